"""The ``tal-lab`` command line: train, runs ls, eval, detect, help and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tal_lab.cli.main import build_parser, main
from tal_lab.data import generate_synthetic

from tiny import FAST_OVERRIDES

TINY = [*FAST_OVERRIDES, "opt.epochs=1", "opt.warmup_epochs=1", "loader.num_workers=0"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    config = generate_synthetic(tmp_path_factory.mktemp("data") / "tiny", preset="tiny", seed=0)
    root = tmp_path_factory.mktemp("runs")
    sets = [arg for item in TINY for arg in ("--set", item)]
    assert main(["train", str(config), "--output-root", str(root), "--name", "cli", "--no-progress", *sets]) == 0
    return config, root / "cli"


def test_train_then_runs_ls(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, run_dir = trained
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert main(["runs", "ls", str(run_dir.parent)]) == 0
    out = capsys.readouterr().out
    assert "cli" in out and "avg_mAP" in out and "finished" in out


def test_eval_and_detect(trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run_dir = trained
    cfg, ckpt = str(run_dir / "config.yaml"), str(run_dir / "checkpoints" / "last.pt")
    assert main(["eval", cfg, ckpt, "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    assert "mAP@0.5" in capsys.readouterr().out
    recorded = json.loads((run_dir / "results.json").read_text())["mAP"]
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["mAP"] == pytest.approx(recorded, abs=1e-12)

    video = pd.read_csv(run_dir / "detections.csv")["video-id"].iloc[0]
    config, _ = trained
    features = config.parent / "features" / f"{video}.npy"
    assert main(["detect", cfg, ckpt, str(features), "--fps", "30", "--out", str(tmp_path / "d.csv")]) == 0
    frame = pd.read_csv(tmp_path / "d.csv")
    assert len(frame) > 0 and set(frame["video-id"]) == {video}
    assert main(["detect", cfg, ckpt, str(features), "--fps", "30", "--top", "5",
                 "--out", str(tmp_path / "d.json")]) == 0
    results = json.loads((tmp_path / "d.json").read_text())["results"][video]
    assert len(results) == 5 and results[0]["score"] >= results[-1]["score"]
    assert results[0]["segment"] == pytest.approx([frame["t-start"][0], frame["t-end"][0]])


def test_errors_are_one_line_with_exit_status_1(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = trained
    sets = [arg for item in TINY for arg in ("--set", item)]
    status = main(["train", str(config), "--output-root", str(run_dir.parent), "--name", "cli", *sets])
    assert status == 1 and "already exists" in capsys.readouterr().err
    assert main(["eval", str(config), str(run_dir / "nope.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["train", str(config), "--set", "model.backbone_type=lstm"]) == 1
    assert "model.backbone_type" in capsys.readouterr().err


def test_recipe_flag_names_the_dialect(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, run_dir = trained  # the synthetic config names recipe: actionformer
    checkpoint = str(run_dir / "checkpoints" / "last.pt")
    assert main(["eval", str(config), checkpoint, "--recipe", "tridet", "--no-progress"]) == 1
    assert "the config says 'actionformer' but the overrides say 'tridet'" in capsys.readouterr().err
    args = build_parser().parse_args(["train", str(config), "--recipe", "tridet", "--set", "opt.epochs=1"])
    assert (args.recipe, args.overrides) == ("tridet", ["opt.epochs=1"])


def test_help_names_every_command() -> None:
    text = build_parser().format_help()
    for command in ("train", "eval", "detect", "runs", "data"):
        assert command in text
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = subprocess.run([sys.executable, "-m", "tal_lab", "detect", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "--fps" in out and "--num-frames" in out and "--stride" in out
