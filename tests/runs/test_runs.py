"""The run store's readers on hand-written run folders: one row per run, mAP in percent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tal_lab.config import dump_config, load_config
from tal_lab.core.atomic_io import append_jsonl, read_jsonl, rewrite_jsonl, write_csv_atomic, write_json_atomic
from tal_lab.runs import default_run_name, load_epoch_evals, load_run, load_runs

TIOUS = [0.3, 0.4, 0.5, 0.6, 0.7]


def _write_run(root: Path, name: str, backbone: str, maps: list[float] | None, seed: int = 1) -> Path:
    run = root / name
    run.mkdir(parents=True)
    cfg = load_config({"model": {"backbone_type": backbone}, "init_rand_seed": seed})
    dump_config(cfg, run / "config.yaml")
    write_json_atomic(run / "run.json", {
        "run_id": f"id-{name}", "name": name, "created": "2025-01-01T00:00:00+00:00",
        "status": "finished" if maps else "running", "seed": seed,
        "dataset": {"name": "synthetic", "kind": "synthetic", "preset": "quick", "seed": 0},
        "backbone_type": backbone, "fpn_type": "identity", "head_type": "actionformer", "loss_weight": 1.0,
        "epochs": 2, "total_epochs": 3, "tal_lab_version": "0.1.0", "git_commit": None, "num_params": 123,
        "device": "cpu"})
    append_jsonl(run / "metrics.jsonl", [{"epoch": 1, "iter": i, "step": i, "lr": 0.1, "final_loss": 1.0 / i,
                                          "seconds": 0.5} for i in (1, 2)])
    epochs = [{"epoch": 1, "iters": 2, "seconds": 1.0, "lr": 0.1, "train": {"final_loss": 0.7}, "eval": None}]
    if maps:
        evaluation = {"tiou_thresholds": TIOUS, "mAP": [m / 2 for m in maps], "average_mAP": sum(maps) / 10,
                      "weights": "ema", "seconds": 0.2}
        epochs[0]["eval"] = evaluation
        epochs.append({"epoch": 2, "iters": 2, "seconds": 3.0, "lr": 0.0, "train": {"final_loss": 0.5},
                       "eval": dict(evaluation, mAP=maps, average_mAP=sum(maps) / 5)})
        write_json_atomic(run / "results.json", {
            "tiou_thresholds": TIOUS, "mAP": maps, "average_mAP": sum(maps) / 5, "per_class_AP": {"0": maps},
            "weights": "ema", "checkpoint_epoch": 2,
            "timings": {"train_seconds": 4.0, "seconds_per_epoch": 2.0, "eval_seconds": 0.5,
                        "seconds_per_video": 0.1}})
        write_csv_atomic(run / "detections.csv", pd.DataFrame(
            {"video-id": ["v"], "t-start": [0.5], "t-end": [1.25], "label": [0], "score": [0.9]}))
    append_jsonl(run / "epochs.jsonl", epochs)
    return run


def test_load_runs_gives_one_row_per_run_with_percent_map(tmp_path: Path) -> None:
    _write_run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1])
    _write_run(tmp_path, "b", "sgp", [0.6, 0.5, 0.4, 0.3, 0.2], seed=2)
    _write_run(tmp_path, "c", "conv", None)  # still running: no results yet
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
    assert a["avg_mAP"] == pytest.approx(30.0) and a["sec_per_epoch"] == 2.0 and a["params"] == 123
    assert a["data_kind"] == "synthetic" and a["data_preset"] == "quick" and a["weights"] == "ema"
    c = runs.set_index("name").loc["c"]
    assert c["status"] == "running" and math.isnan(c["avg_mAP"])
    # Tables are groupbys.
    assert runs.groupby("backbone")["avg_mAP"].mean()["sgp"] == pytest.approx(40.0)
    assert load_runs(tmp_path / "missing").empty


def test_load_epoch_evals_lists_every_evaluated_epoch(tmp_path: Path) -> None:
    _write_run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1])
    _write_run(tmp_path, "c", "conv", None)
    evals = load_epoch_evals(tmp_path)
    assert list(evals["epoch"]) == [1, 2] and set(evals["name"]) == {"a"}
    assert list(evals["mAP@0.3"]) == pytest.approx([25.0, 50.0])
    assert list(evals["avg_mAP"]) == pytest.approx([15.0, 30.0])
    assert set(evals["weights"]) == {"ema"} and set(evals["backbone"]) == {"convTransformer"}


def test_load_run_reads_every_file(tmp_path: Path) -> None:
    run = load_run(_write_run(tmp_path, "a", "convTransformer", [0.5, 0.4, 0.3, 0.2, 0.1]))
    assert run.name == "a" and run.config["model"]["backbone_type"] == "convTransformer"
    assert list(run.metrics["final_loss"]) == [1.0, 0.5]
    assert list(run.epochs["epoch"]) == [1, 2] and run.epochs["avg_mAP"].iloc[1] == pytest.approx(30.0)
    assert run.results["checkpoint_epoch"] == 2 and run.detections["t-end"].iloc[0] == 1.25
    assert run.checkpoint is None
    with pytest.raises(FileNotFoundError, match="not a tal_lab run folder"):
        load_run(tmp_path)


def test_jsonl_tolerates_a_torn_last_line_and_rewrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    append_jsonl(path, [{"epoch": 1}, {"epoch": 2}])
    with open(path, "a") as handle:
        handle.write('{"epoch": 3, "lo')  # killed mid-line
    assert read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]
    assert rewrite_jsonl(path, lambda r: r["epoch"] <= 1) == 1
    assert read_jsonl(path) == [{"epoch": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_json_writer_converts_numpy_and_nan(tmp_path: Path) -> None:
    import numpy as np

    write_json_atomic(tmp_path / "r.json", {"a": np.array([0.5, np.nan]), "b": np.float32(2.0), "c": np.int64(3)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [0.5, None], "b": 2.0, "c": 3}


def test_default_run_name_carries_the_configuration() -> None:
    cfg = load_config({"dataset_name": "synthetic", "model": {"backbone_type": "sgp"},
                       "train_cfg": {"loss_weight": 0.2}, "opt": {"epochs": 30}, "init_rand_seed": 7})
    assert default_run_name(cfg) == "synthetic-quick-sgp-identity-actionformer-lw0.2-e30-s7"
    cfg = load_config({"dataset_name": "thumos"})
    assert default_run_name(cfg).startswith("thumos-convTransformer-identity-actionformer-lw1-e30-s")
