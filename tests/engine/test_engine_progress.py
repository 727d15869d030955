"""Progress of a training run: the mode chosen for where it runs, and the plain epoch lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tal_lab.data import generate_synthetic
from tal_lab.engine import train
from tal_lab.engine.progress import format_epoch_line, format_seconds, progress_mode

from tiny import FAST_OVERRIDES

TINY = [*FAST_OVERRIDES, "model.sgp_mlp_dim=32", "opt.epochs=2", "opt.warmup_epochs=1", "loader.num_workers=0"]


def test_the_environment_variable_forces_the_mode_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAL_LAB_PROGRESS", "lines")
    assert progress_mode(True) == "lines" and progress_mode(False) == "off"
    monkeypatch.setenv("TAL_LAB_PROGRESS", "BARS")
    assert progress_mode(True) == "bars"
    monkeypatch.setenv("TAL_LAB_PROGRESS", "widgets")
    with pytest.raises(ValueError, match="TAL_LAB_PROGRESS='widgets': choose one of bars, lines, off"):
        progress_mode(True)


def test_a_process_without_a_terminal_or_notebook_front_end_prints_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAL_LAB_PROGRESS", raising=False)
    code = "from tal_lab.engine.progress import progress_mode; print(progress_mode(True))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "lines"  # stderr is a pipe here, as in a batch job or a log file


def test_epoch_lines_carry_loss_lr_time_and_eta() -> None:
    assert format_seconds(42.4) == "42 s" and format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"
    line = format_epoch_line(3, 12, 0.81234, 1.2e-4, 4.0, 5.0)
    assert line == "epoch 3/12: loss 0.8123, lr 1.20e-04, 4 s, ETA 45 s"


def test_a_headless_run_prints_one_line_per_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAL_LAB_PROGRESS", "lines")
    config = generate_synthetic(tmp_path / "tiny", preset="tiny", seed=0)
    train(config, tmp_path / "runs", overrides=TINY + ["engine.eval_epochs=[1]"], progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3, lines  # 1 warm-up + 2 epochs
    pattern = r"epoch (\d)/3: loss \d+\.\d{4}, lr \d\.\d\de[-+]\d\d, \d+ s, ETA \d+ s"
    assert [int(re.match(pattern, line).group(1)) for line in lines] == [1, 2, 3]
    assert "average mAP" in lines[0] and "average mAP" in lines[2] and "average mAP" not in lines[1]
    assert "\r" not in "".join(lines) and "%|" not in capsys.readouterr().err
