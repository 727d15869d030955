"""Evaluation helpers: external-score fusion (hand-computed), scoring, inference over batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tal_lab.engine.evaluator import (
    fuse_external_scores, load_external_scores, run_inference, score_detections, tiou_thresholds_for)


def test_fusion_repeats_best_detections_for_top_external_classes() -> None:
    dets = pd.DataFrame({"video-id": ["a", "a", "a", "b"], "t-start": [0.0, 1.0, 2.0, 5.0],
                         "t-end": [1.0, 2.0, 3.0, 6.0], "label": [0, 0, 0, 0], "score": [0.25, 0.81, 0.49, 0.36]})
    scores = {"a": np.array([0.1, 0.64, 0.04, 0.36]), "b": np.array([1.0, 0.0, 0.0, 0.25])}
    fused = fuse_external_scores(dets, scores, num_pred=2, topk=2)
    # Video a keeps its 2 best detections (0.81, 0.49) for classes 1 (0.64) then 3 (0.36).
    a = fused[fused["video-id"] == "a"]
    assert list(a["label"]) == [1, 1, 3, 3]
    assert list(a["t-start"]) == [1.0, 2.0, 1.0, 2.0]
    assert a["score"].to_numpy() == pytest.approx(np.sqrt([0.64 * 0.81, 0.64 * 0.49, 0.36 * 0.81, 0.36 * 0.49]))
    b = fused[fused["video-id"] == "b"]
    assert list(b["label"]) == [0, 3] and b["score"].to_numpy() == pytest.approx([0.6, 0.3])
    with pytest.raises(ValueError, match="lack video 'b'"):
        fuse_external_scores(dets, {"a": scores["a"]})


def test_external_scores_load_from_json_only(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"results": {"v": [0.1, 0.9]}}))
    assert load_external_scores(tmp_path / "s.json")["v"].tolist() == [0.1, 0.9]
    (tmp_path / "s.pkl").write_bytes(b"\x80")
    with pytest.raises(ValueError, match="JSON only"):
        load_external_scores(tmp_path / "s.pkl")
    with pytest.raises(FileNotFoundError, match="ext_score_file"):
        load_external_scores(tmp_path / "none.json")


def test_perfect_detections_score_one_and_classes_without_gt_are_left_out() -> None:
    gt = pd.DataFrame({"video-id": ["a", "a", "b"], "t-start": [1.0, 5.0, 0.0], "t-end": [3.0, 9.0, 4.0],
                       "label": [0, 2, 2]})
    dets = gt.assign(score=[0.9, 0.8, 0.7])
    mean_ap, average, per_class = score_detections(gt, dets, [0.3, 0.5, 0.7], num_classes=4)
    assert mean_ap == [1.0, 1.0, 1.0] and average == 1.0
    assert np.isnan(per_class[1][0]) and per_class[2] == [1.0, 1.0, 1.0]
    assert tiou_thresholds_for({"dataset_name": "anet"})[0] == 0.5
    # exactly the official evaluator's np.linspace values, not rounded ones
    assert tiou_thresholds_for({"dataset_name": "thumos"}) == np.linspace(0.3, 0.7, 5).tolist()
    assert tiou_thresholds_for({"dataset_name": "thumos"})[1] == 0.39999999999999997


class _FixedDetector(nn.Module):
    """Eval-mode stand-in: one detection per video, whose score is the video's mean feature."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, videos: list[dict]) -> list[dict]:
        assert not self.training
        return [{"video_id": v["video_id"], "segments": torch.tensor([[0.5, 1.5]]),
                 "scores": v["feats"].mean().reshape(1), "labels": torch.tensor([1])} for v in videos]


def test_run_inference_collects_every_video_and_restores_train_mode() -> None:
    model = _FixedDetector().train()
    batches = [[{"video_id": f"v{i}", "feats": torch.full((2, 3), float(i))} for i in (1, 2)],
               [{"video_id": "v3", "feats": torch.full((2, 3), 3.0)}]]
    frame, num_videos, seconds = run_inference(model, batches, torch.device("cpu"))
    assert num_videos == 3 and seconds >= 0 and model.training
    assert list(frame.columns) == ["video-id", "t-start", "t-end", "label", "score"]
    assert list(frame["video-id"]) == ["v1", "v2", "v3"] and list(frame["score"]) == [1.0, 2.0, 3.0]
    assert frame["label"].dtype == np.int64
