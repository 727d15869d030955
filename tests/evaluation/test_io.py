"""tal_lab.evaluation.io: the annotation JSON read as the reference loads it; prediction files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch

from tal_lab.evaluation import (
    detections_to_frame,
    read_class_names,
    read_ground_truth_json,
    read_predictions,
    read_video_info_json,
)


@pytest.mark.needs_shared
def test_ground_truth_json_reader_equals_the_reference_loading(shared_dir: Path) -> None:
    json_path = shared_dir / "data" / "thumos14" / "thumos14.json"
    gt = read_ground_truth_json(json_path, subset="test")
    expected = read_predictions(shared_dir / "reference" / "eval" / "gt_test_reference.csv")
    pd.testing.assert_frame_equal(gt.reset_index(drop=True), expected, check_dtype=False)
    assert len(read_class_names(json_path)) == 20
    info = read_video_info_json(json_path, subset="Test")
    assert len(info) == 212 and (info["duration"] > 0).all()


def test_detections_and_prediction_files_round_trip(tmp_path: Path) -> None:
    detections = [
        {"video_id": "a", "segments": torch.tensor([[0.0, 10.0], [20.0, 25.0]]), "scores": torch.tensor([0.9, 0.3]),
         "labels": torch.tensor([0, 1])},
        {"video_id": "b", "segments": torch.zeros((0, 2)), "scores": torch.zeros(0), "labels": torch.zeros(0)},
    ]
    frame = detections_to_frame(detections)
    assert frame["video-id"].tolist() == ["a", "a"] and frame["label"].tolist() == [0, 1]
    frame.to_csv(tmp_path / "p.csv", index=False)
    with open(tmp_path / "p.pkl", "wb") as f:
        pickle.dump({c: frame[c].to_numpy() for c in frame.columns}, f)
    anet = {"results": {"a": [{"segment": [0.0, 10.0], "label": 0, "score": 0.9},
                              {"segment": [20.0, 25.0], "label": 1, "score": 0.3}]}}
    (tmp_path / "p.json").write_text(json.dumps(anet))
    for name in ("p.csv", "p.pkl", "p.json"):
        pd.testing.assert_frame_equal(read_predictions(tmp_path / name), frame, check_dtype=False)
    with pytest.raises(ValueError, match="unsupported"):
        read_predictions(tmp_path / "p.txt")
    with pytest.raises(ValueError, match="needs video_id"):
        detections_to_frame([{"video_id": "a"}])
