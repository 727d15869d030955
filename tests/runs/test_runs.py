"""The run store's readers on hand-written run folders: one row per run, mAP in percent."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tal_lab.config import load_config
from tal_lab.runs import default_run_name, load_epoch_evals, load_run, load_runs

from fake_runs import NUM_PARAMS, write_run

DETECTIONS = pd.DataFrame({"video-id": ["v"], "t-start": [0.5], "t-end": [1.25], "label": [0], "score": [0.9]})


def _run(root: Path, name: str, backbone: str, maps: list[float] | None, seed: int = 1) -> Path:
    """A synthetic-data run of 2 epochs after 1 warm-up epoch; finished runs were evaluated at
    epoch 1 (half the final mAP) and at the last epoch, 3 (``maps``)."""
    cfg = load_config({"dataset_name": "synthetic", "model": {"backbone_type": backbone}, "init_rand_seed": seed,
                       "opt": {"epochs": 2, "warmup_epochs": 1}, "engine": {"eval_epochs": [1]}})
    return write_run(root, name, cfg, maps=maps, epoch_maps={1: [m / 2 for m in maps]} if maps else None,
                     detections=DETECTIONS)


def test_load_runs_gives_one_row_per_run_with_percent_map(tmp_path: Path) -> None:
    _run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1])
    _run(tmp_path, "b", "sgp", [0.6, 0.5, 0.4, 0.3, 0.2], seed=2)
    _run(tmp_path, "c", "conv", None)  # still running: no results yet
    (tmp_path / "not_a_run").mkdir()
    runs = load_runs(tmp_path)
    assert list(runs["name"]) == ["a", "b", "c"]
    for column in ["run_id", "path", "status", "dataset", "data_kind", "data_preset", "seed", "backbone", "neck",
                   "head", "loss_weight", "epochs", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7",
                   "avg_mAP", "weights", "checkpoint_epoch", "params", "sec_per_epoch", "train_seconds",
                   "created", "git_commit", "version"]:
        assert column in runs.columns, column
    a = runs.set_index("name").loc["a"]
    assert a["mAP@0.3"] == pytest.approx(50.0) and a["mAP@0.7"] == pytest.approx(10.0)
    assert a["avg_mAP"] == pytest.approx(30.0) and a["sec_per_epoch"] == 2.0 and a["params"] == NUM_PARAMS
    assert a["data_kind"] == "synthetic" and a["data_preset"] == "quick" and a["weights"] == "ema"
    c = runs.set_index("name").loc["c"]
    assert c["status"] == "running" and math.isnan(c["avg_mAP"])
    # Tables are groupbys.
    assert runs.groupby("backbone")["avg_mAP"].mean()["sgp"] == pytest.approx(40.0)
    assert load_runs(tmp_path / "missing").empty


def test_load_epoch_evals_lists_every_evaluated_epoch(tmp_path: Path) -> None:
    _run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1])
    _run(tmp_path, "c", "conv", None)
    evals = load_epoch_evals(tmp_path)
    assert list(evals["epoch"]) == [1, 3] and set(evals["name"]) == {"a"}
    assert list(evals["mAP@0.3"]) == pytest.approx([25.0, 50.0])
    assert list(evals["avg_mAP"]) == pytest.approx([15.0, 30.0])
    assert set(evals["weights"]) == {"ema"} and set(evals["backbone"]) == {"convTransformer"}


def test_load_run_reads_every_file(tmp_path: Path) -> None:
    run = load_run(_run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1]))
    assert run.name == "a" and run.config["model"]["backbone_type"] == "convTransformer"
    assert list(run.metrics["step"]) == [1, 2, 3, 4, 5, 6] and run.metrics["final_loss"].iloc[1] == 0.5
    assert list(run.epochs["epoch"]) == [1, 2, 3] and run.epochs["avg_mAP"].iloc[2] == pytest.approx(30.0)
    assert run.epochs["avg_mAP"].iloc[0] == pytest.approx(15.0) and math.isnan(run.epochs["avg_mAP"].iloc[1])
    assert run.results["checkpoint_epoch"] == 3 and run.detections["t-end"].iloc[0] == 1.25
    assert run.checkpoint is None
    with pytest.raises(FileNotFoundError, match="not a tal_lab run folder"):
        load_run(tmp_path)


def test_default_run_name_carries_the_configuration() -> None:
    cfg = load_config({"dataset_name": "synthetic", "model": {"backbone_type": "sgp"},
                       "train_cfg": {"loss_weight": 0.2}, "opt": {"epochs": 30}, "init_rand_seed": 7})
    assert default_run_name(cfg) == "synthetic-quick-sgp-identity-actionformer-lw0.2-e30-s7"
    cfg = load_config({"dataset_name": "thumos"})
    assert default_run_name(cfg).startswith("thumos-convTransformer-identity-actionformer-lw1-e30-s")
