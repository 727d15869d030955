"""Evaluation helpers: external-score fusion (hand-computed), scoring, inference over batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tal_lab.config import apply_overrides, load_config
from tal_lab.data import build_dataset
from tal_lab.engine.evaluator import (
    EvalResult, agnostic_ground_truth, fuse_external_scores, load_external_scores, run_inference, score_detections,
    tiou_thresholds_for)
from tal_lab.engine.trainer import evaluate_detector


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


class _ScriptedDetector(nn.Module):
    """Eval-mode stand-in returning fixed detections (seconds) per video id."""

    def __init__(self, detections: dict[str, list[tuple[float, float, int, float]]]) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.detections = detections

    def forward(self, videos: list[dict]) -> list[dict]:
        out = []
        for video in videos:
            rows = self.detections[video["video_id"]]
            out.append({"video_id": video["video_id"], "segments": torch.tensor([[s, e] for s, e, _, _ in rows]),
                        "labels": torch.tensor([c for _, _, c, _ in rows]),
                        "scores": torch.tensor([p for _, _, _, p in rows])})
        return out


def _write_dataset(tmp_path: Path, name: str, acts: list[tuple[str, int, float, float]], **dataset: object) -> dict:
    """One validation video (60 s, 4-channel features) and one training video, in ActionFormer's format."""
    train_act = {"label": "train_only", "label_id": 3, "segment": [1.0, 2.0]}
    database = {"val_video": {"subset": "Validation", "duration": 60.0, "fps": 30.0,
                              "annotations": [{"label": label, "label_id": label_id, "segment": [start, end]}
                                              for label, label_id, start, end in acts]},
                "train_video": {"subset": "Training", "duration": 60.0, "fps": 30.0, "annotations": [train_act]}}
    (tmp_path / "feats").mkdir(parents=True)
    (tmp_path / "anno.json").write_text(json.dumps({"database": database}))
    ext = ".npz" if name == "epic" else ".npy"
    for video_id in database:
        feats = np.zeros((100, 4), dtype=np.float32)
        if ext == ".npz":
            np.savez(tmp_path / "feats" / f"{video_id}.npz", feats=feats)
        else:
            np.save(tmp_path / "feats" / f"{video_id}.npy", feats)
    return load_config({"dataset_name": name, "train_split": ["training"], "val_split": ["validation"],
                        "dataset": {"json_file": str(tmp_path / "anno.json"), "feat_folder": str(tmp_path / "feats"),
                                    "file_ext": ext, "input_dim": 4, "feat_stride": 16, "num_frames": 32,
                                    "max_seq_len": 192, **dataset},
                        "model": {"n_mha_win_size": 3}})


def _evaluate(cfg: dict, detections: dict) -> EvalResult:
    dataset = build_dataset(cfg, "val")
    return evaluate_detector(_ScriptedDetector(detections), cfg, dataset, [[dataset[0]]], torch.device("cpu"),
                             "model", None)


def test_epic_official_label_space_reproduces_the_official_evaluator(tmp_path: Path) -> None:
    # GT of classes 0 and 2 only (nouns absent from the validation split); the official evaluator
    # renumbers them 0 and 1 and keeps the raw id of a class-1 prediction, which then competes
    # as class 2's false positive (tests/evaluation/test_label_space.py computes both by hand).
    acts = [("pan", 0, 0.0, 10.0), ("knife", 2, 20.0, 30.0)]
    detections = {"val_video": [(40.0, 50.0, 1, 0.9), (20.0, 30.0, 2, 0.8), (0.0, 10.0, 0, 0.7)]}
    corrected = _evaluate(_write_dataset(tmp_path / "a", "epic", acts, num_classes=4), detections)
    official = _evaluate(_write_dataset(tmp_path / "b", "epic", acts, num_classes=4,
                                        eval_label_space="official"), detections)
    assert corrected.tiou_thresholds == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert corrected.mAP == [1.0] * 5 and official.mAP == [0.75] * 5
    assert official.per_class_ap == {0: [1.0] * 5, 2: [0.5] * 5}
    assert corrected.per_class_ap[2] == [1.0] * 5 and np.isnan(corrected.per_class_ap[1]).all()


def test_one_class_without_external_scores_is_scored_as_proposals(tmp_path: Path) -> None:
    # ActivityNet with num_classes 1: the dataset trains on label 0; the GT of two classes is
    # scored class-agnostic, so both label-0 detections are true positives.
    acts = [("Archery", 0, 0.0, 10.0), ("Bowling", 2, 20.0, 30.0)]
    cfg = _write_dataset(tmp_path, "anet", acts, num_classes=1, max_seq_len=192)
    result = _evaluate(cfg, {"val_video": [(0.0, 10.0, 0, 0.9), (20.0, 30.0, 0, 0.8)]})
    assert result.average_mAP == 1.0 and list(result.per_class_ap) == [0]
    ground_truth = pd.DataFrame({"video-id": ["v"], "t-start": [0.0], "t-end": [1.0], "label": [7]})
    assert agnostic_ground_truth(cfg, ground_truth)["label"].tolist() == [0]
    fused = apply_overrides(cfg, {"test_cfg": {"ext_score_file": "scores.json"}})
    assert agnostic_ground_truth(fused, ground_truth)["label"].tolist() == [7]  # external classes label them
