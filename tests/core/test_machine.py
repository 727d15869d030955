"""The machine a run records: the processor's model name and CPU count, read from the OS."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tal_lab.core import machine


def test_the_model_name_comes_from_cpuinfo_and_the_count_from_the_affinity(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n")
    monkeypatch.setattr(machine, "_CPUINFO", cpuinfo)
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert machine.cpu_model() == "AMD EPYC 9R14 96-Core Processor"
    assert machine.machine_of(torch.device("cpu")) == "AMD EPYC 9R14 96-Core Processor, 2 CPUs"
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert machine.machine_of(torch.device("cpu")).endswith(", 1 CPU")


def test_without_cpuinfo_the_platform_says_or_it_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "_CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(machine.platform, "processor", lambda: "arm")
    assert machine.cpu_model() == "arm"
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    assert machine.cpu_model() is None
    assert machine.machine_of(torch.device("cpu")).startswith("unknown processor, ")
