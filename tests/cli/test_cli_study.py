"""``tal-lab study``'s scaling options: the dry run with devices and estimates, ``--status``
over a run store, and errors for bad launcher options (nothing trains here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tal_lab.cli import main as cli_main
from tal_lab.config import load_config
from tal_lab.study.job_state import JobRecord, write_record
from tal_lab.study.params import BACKBONE_CHOICES
from tal_lab.study.plan import build_plan

from fake_runs import write_run

SELECTION = ["--preset", "tiny", "--tables", "I", "--configs", "original,E,B"]


def test_dry_run_shows_the_launcher_each_runs_slot_and_its_estimate(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = ["study", "--dry-run", *SELECTION, "--data-root", str(tmp_path / "d"), "--launcher", "local",
            "--devices", "cpu", "--jobs", "2"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "3 run(s) after removing duplicates" in out and "launcher local: 2 slot(s)" in out
    run_lines = [line for line in out.splitlines() if line.startswith("  synthetic-tiny-")]
    assert len(run_lines) == 3 and all("cpu slot" in line and "s/epoch x 3 epochs" in line for line in run_lines)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("extra, message", [
    (["--devices", "cuda:7"], "cuda:7 asked for, but"),
    (["--gpus-per-run", "0"], "gpus_per_run must be a positive integer"),
    (["--launcher", "slurm", "--time", "soon"], "--time 'soon' is not a Slurm time"),
    (["--launcher", "slurm", "--sbatch-extra", "qos"], "--sbatch-extra 'qos' is not KEY=VALUE"),
    (["--retries", "-1"], "retries must be an integer >= 0"),
])
def test_bad_scaling_options_are_one_line_errors(extra: list[str], message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["study", "--dry-run", *SELECTION, "--data-root", str(tmp_path), *extra]) == 1
    assert message in capsys.readouterr().err


def test_status_shows_done_running_queued_and_failed_with_the_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path / "data"), tables=("I",),
                      configurations=("original", "E", "B"))
    runs = tmp_path / "runs"
    original, e, b = plan.runs
    for spec, kwargs in ((original, {"maps": [0.5] * 5}), (e, {"status": "failed", "error": "ValueError: boom"})):
        cfg = load_config({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": "tiny"}},
                           "model": {"backbone_type": BACKBONE_CHOICES[spec.backbone], "fpn_type": spec.neck},
                           "opt": {"epochs": spec.epochs}, "init_rand_seed": spec.seed})
        write_run(runs, spec.run_name(plan.data_tag), cfg, **kwargs)
    write_record(runs, e.run_name(plan.data_tag), JobRecord("local", "99", "cpu slot 1 (1 thread)", 2,
                                                           "2025-01-01T00:00:00+00:00", "failed", error="boom"))
    args = ["study", "--status", *SELECTION, "--data-root", str(tmp_path / "data"), "--output-root", str(runs),
            "--reports", str(tmp_path / "reports")]
    assert cli_main(args) == 1  # a run failed
    out = capsys.readouterr().out
    assert "1 done, 0 running, 1 queued, 1 failed" in out
    assert f"done     {original.run_name(plan.data_tag)}" in out
    assert f"failed   {e.run_name(plan.data_tag)}" in out and "| ValueError: boom" in out
    assert f"queued   {b.run_name(plan.data_tag)}" in out and "not started" in out
    assert "reports: not written yet" in out
