"""Training end to end on the real detector and the real (tiny) synthetic benchmark.

The run store's files, exact resume after a stop, the NaN guard, the eval / detect entry
points. Models are tiny (width 16, max_seq_len 128) so each run takes a second or two.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from tal_lab.core.machine import machine_of, usable_cpus
from tal_lab.data import generate_synthetic
from tal_lab.engine import NonFiniteLossError, Trainer, components, detect, evaluate, train
from tal_lab.engine.checkpoints.training_state import load_training_checkpoint
from tal_lab.runs import load_epoch_evals, load_run, load_runs

from tiny import FAST_OVERRIDES

# Tiny but complete: every part of the original configuration, 3 epochs of 3 iterations.
TINY = [*FAST_OVERRIDES, "model.sgp_mlp_dim=32", "opt.epochs=2", "opt.warmup_epochs=1", "loader.num_workers=0",
        "engine.progress=false"]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("synthetic") / "tiny", preset="tiny", seed=0)


@pytest.fixture(scope="module")
def finished_run(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return train(tiny_config, root, overrides=TINY + ["engine.eval_epochs=[1]"])


def test_a_run_folder_holds_the_whole_record(finished_run: Path) -> None:
    run = load_run(finished_run)
    assert finished_run.name == "synthetic-tiny-convTransformer-identity-actionformer-lw1-e2-s1234567891"
    info = run.info
    assert info["status"] == "finished" and info["seed"] == 1234567891 and info["total_epochs"] == 3
    assert info["dataset"]["kind"] == "synthetic" and info["dataset"]["preset"] == "tiny"
    # the machine behind its timings, in words, and the threads it trained with
    assert info["machine"] == machine_of(torch.device("cpu")) and info["machine"].endswith(" CPUs" if
                                                                                      usable_cpus() > 1 else " CPU")
    assert isinstance(info["torch_threads"], int) and info["torch_threads"] >= 1
    assert load_runs(finished_run.parent)["machine"].tolist() == [info["machine"]]
    assert info["num_params"] == sum(p.numel() for p in components.build_detector(
        _cfg(finished_run)).parameters())
    assert run.config["model"]["embd_dim"] == 16
    # metrics.jsonl: one row per iteration; lr is the warm-up then cosine schedule.
    assert list(run.metrics["step"]) == list(range(1, 10))
    assert list(run.metrics["lr"][:3]) == pytest.approx([0.0, 5e-4, 1e-3])
    assert {"cls_loss", "reg_loss", "final_loss", "seconds"} <= set(run.metrics.columns)
    # epochs.jsonl: evaluated at the listed epoch 1 and at the last epoch.
    assert list(run.epochs["epoch"]) == [1, 2, 3]
    assert run.epochs["avg_mAP"].notna().tolist() == [True, False, True]
    results = run.results
    assert results["tiou_thresholds"] == np.linspace(0.3, 0.7, 5).tolist()  # unrounded, as evaluated
    assert results["weights"] == "ema" and results["checkpoint_epoch"] == 3
    assert all(0.0 <= m <= 1.0 for m in results["mAP"])
    assert results["average_mAP"] == pytest.approx(np.mean(results["mAP"]))
    assert results["timings"]["train_seconds"] == pytest.approx(run.epochs["seconds"].sum())
    assert list(run.detections.columns) == ["video-id", "t-start", "t-end", "label", "score"]
    assert len(run.detections) > 0 and run.checkpoint == finished_run / "checkpoints" / "last.pt"
    # Checkpoints: last.pt with everything, epoch_001.pt (evaluated epoch) with weights only.
    state = load_training_checkpoint(run.checkpoint)
    assert state["epochs_done"] == 3 and state["epoch"] == 2
    assert {"state_dict", "state_dict_ema", "optimizer", "scheduler", "rng", "loss_normalizer"} <= set(state)
    weights_only = load_training_checkpoint(finished_run / "checkpoints" / "epoch_001.pt")
    assert set(weights_only) == {"epoch", "epochs_done", "state_dict", "state_dict_ema"}

    row = load_runs(finished_run.parent).iloc[0]
    assert row["status"] == "finished" and row["backbone"] == "convTransformer" and row["epochs"] == 2
    assert row["avg_mAP"] == pytest.approx(100 * results["average_mAP"])
    evals = load_epoch_evals(finished_run.parent)
    assert list(evals["epoch"]) == [1, 3]


def _cfg(run_dir: Path) -> dict[str, Any]:
    from tal_lab.config import load_config

    return load_config(run_dir / "config.yaml")


def test_evaluate_and_detect_reproduce_the_run(finished_run: Path, tmp_path: Path) -> None:
    cfg = finished_run / "config.yaml"
    ckpt = finished_run / "checkpoints" / "last.pt"
    result = evaluate(cfg, ckpt, weights="ema", output=tmp_path / "eval")
    recorded = load_run(finished_run).results
    assert result.mAP == pytest.approx(recorded["mAP"], abs=1e-12)
    assert result.checkpoint_epoch == 3 and result.weights == "ema"
    written = pd.read_csv(tmp_path / "eval" / "detections.csv")
    assert len(written) == len(result.detections)
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["weights"] == "ema"

    config = _cfg(finished_run)
    video = written["video-id"].iloc[0]
    features = Path(config["dataset"]["feat_folder"]) / f"{video}.npy"
    frame = detect(cfg, ckpt, features, fps=30.0)
    assert list(frame.columns[:5]) == ["video-id", "t-start", "t-end", "label", "score"]
    assert (frame["video-id"] == video).all() and frame["score"].is_monotonic_decreasing
    # The same video evaluated in the split gives the same detections (duration aside: clipping).
    mine = result.detections[result.detections["video-id"] == video].sort_values("score", ascending=False)
    assert len(frame) == len(mine)
    assert frame["score"].to_numpy() == pytest.approx(mine["score"].to_numpy(), abs=1e-6)
    with pytest.raises(ValueError, match="fps"):
        detect(cfg, ckpt, features)


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(
    tiny_config: Path, finished_run: Path, tmp_path: Path
) -> None:
    # The reference run was evaluated at epoch 1; this one is not: evaluating must not change training.
    run_dir = train(tiny_config, tmp_path, "stopped", overrides=TINY, stop_after_epochs=1)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "running" and load_training_checkpoint(run_dir / "checkpoints/last.pt")["epochs_done"] == 1
    with pytest.raises(ValueError, match="already exists"):
        train(tiny_config, tmp_path, "stopped", overrides=TINY)
    with pytest.raises(ValueError, match="config differs.*opt.learning_rate"):
        train(tiny_config, tmp_path, "stopped", overrides=TINY + ["opt.learning_rate=0.5"], resume=True)
    train(tiny_config, tmp_path, "stopped", overrides=TINY, resume=True)

    resumed = load_training_checkpoint(run_dir / "checkpoints" / "last.pt")
    straight = load_training_checkpoint(finished_run / "checkpoints" / "last.pt")
    for key in ("state_dict", "state_dict_ema"):
        assert resumed[key].keys() == straight[key].keys()
        for name, value in straight[key].items():
            assert torch.equal(resumed[key][name], value), f"{key}.{name}"
    assert resumed["loss_normalizer"] == straight["loss_normalizer"]
    run = load_run(run_dir)
    assert run.info["status"] == "finished" and len(run.info["resumed"]) == 1
    assert list(run.metrics["step"]) == list(range(1, 10)) and list(run.epochs["epoch"]) == [1, 2, 3]
    assert run.results["mAP"] == pytest.approx(load_run(finished_run).results["mAP"], abs=1e-12)
    # Resuming a finished run does nothing.
    mtime = (run_dir / "results.json").stat().st_mtime_ns
    assert train(tiny_config, tmp_path, "stopped", overrides=TINY, resume=True) == run_dir
    assert (run_dir / "results.json").stat().st_mtime_ns == mtime


def test_a_nan_loss_stops_the_run_naming_the_iteration(
    tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = components.build_detector

    def poisoned(cfg: Any) -> torch.nn.Module:
        detector = real_build(cfg)
        forward = detector.forward
        calls = {"n": 0}

        def forward_with_nan(videos: Any) -> Any:
            out = forward(videos)
            if detector.training:
                calls["n"] += 1
                if calls["n"] == 5:  # epoch 2, iteration 2 (3 iterations per epoch)
                    out = dict(out, final_loss=out["final_loss"] * float("nan"))
            return out

        detector.forward = forward_with_nan  # type: ignore[method-assign]
        return detector

    monkeypatch.setattr(components, "build_detector", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 2, iteration 2 of 3") as err:
        train(tiny_config, tmp_path, "nan", overrides=TINY)
    assert "final_loss=nan" in str(err.value) and "last good checkpoint (1 epochs)" in str(err.value)
    info = json.loads((tmp_path / "nan" / "run.json").read_text())
    assert info["status"] == "failed" and "NonFiniteLossError" in info["error"]
    kept = load_training_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")
    assert kept["epochs_done"] == 1
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())


def test_raw_weights_no_ema_and_tensorboard(tiny_config: Path, tmp_path: Path) -> None:
    run_dir = train(tiny_config, tmp_path, "raw", overrides=TINY + [
        "engine.ema=false", "opt.epochs=1", "opt.warmup_epochs=0", "opt.warmup=false", "engine.tensorboard=true"])
    run = load_run(run_dir)
    assert run.results["weights"] == "model" and run.results["checkpoint_epoch"] == 1
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "state_dict_ema" not in load_training_checkpoint(run.checkpoint)
    with pytest.raises(ValueError, match="no state_dict_ema"):
        evaluate(run_dir / "config.yaml", run.checkpoint, weights="ema")


def _same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("state_dict", "state_dict_ema"):
        assert a[key].keys() == b[key].keys()
        for name, value in b[key].items():
            assert torch.equal(a[key][name], value), f"{key}.{name}"


def test_a_failing_final_evaluation_keeps_the_final_checkpoint_and_resume_finishes(
    tiny_config: Path, finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Trainer) -> Any:
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(Trainer, "evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        train(tiny_config, tmp_path, "evalfail", overrides=TINY)
    run_dir = tmp_path / "evalfail"
    state = load_training_checkpoint(run_dir / "checkpoints" / "last.pt")
    # The checkpoint was written before the evaluation: it is at the final epoch, with its record.
    assert state["epochs_done"] == 3 and state["epoch_record"]["epoch"] == 3 and state["epoch_record"]["eval"] is None
    _same_weights(state, load_training_checkpoint(finished_run / "checkpoints" / "last.pt"))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "evaluation broke" in info["error"]
    assert [r["epoch"] for r in map(json.loads, (run_dir / "epochs.jsonl").read_text().splitlines())] == [1, 2]

    monkeypatch.undo()
    train(tiny_config, tmp_path, "evalfail", overrides=TINY, resume=True)
    run = load_run(run_dir)
    assert run.info["status"] == "finished" and list(run.epochs["epoch"]) == [1, 2, 3]
    assert list(run.metrics["step"]) == list(range(1, 10))  # nothing was trained again
    assert run.results["mAP"] == pytest.approx(load_run(finished_run).results["mAP"], abs=1e-12)


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(
    tiny_config: Path, finished_run: Path, tmp_path: Path
) -> None:
    run_dir = train(tiny_config, tmp_path, "damaged", overrides=TINY, stop_after_epochs=2)
    last, previous = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "last.prev.pt"
    assert load_training_checkpoint(previous)["epochs_done"] == 1 and load_training_checkpoint(last)["epochs_done"] == 2
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # damaged after it was written
    message = rf"{re.escape(str(last))} is not readable .*previous checkpoint {re.escape(str(previous))} \(1 epochs"
    with pytest.warns(RuntimeWarning, match=message):
        train(tiny_config, tmp_path, "damaged", overrides=TINY, resume=True)
    # Resumed after epoch 1, the run ends exactly as one never interrupted.
    _same_weights(load_training_checkpoint(last), load_training_checkpoint(finished_run / "checkpoints" / "last.pt"))
    run = load_run(run_dir)
    assert run.info["status"] == "finished" and list(run.epochs["epoch"]) == [1, 2, 3]
    assert list(run.metrics["step"]) == list(range(1, 10))
