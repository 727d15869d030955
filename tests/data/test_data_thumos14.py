"""ActionFormer-format loading on the real THUMOS14 annotations (feature files written here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal_lab.config import load_config
from tal_lab.data import DataError, DataFileNotFoundError, build_dataset
from tal_lab.data.validate import validate_dataset

INPUT_DIM = 8
THUMOS_LABELS = ["BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketBowling",
                 "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow", "HighJump", "JavelinThrow",
                 "LongJump", "PoleVault", "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus",
                 "VolleyballSpiking"]


def _num_steps(duration: float, fps: float) -> int:
    return max(1, (int(round(duration * fps)) - 16) // 4 + 1)


@pytest.fixture(scope="module")
def thumos(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real JSON and one small (T, 8) feature file per video, T from duration and fps."""
    json_file = shared_dir / "data" / "thumos14" / "thumos14.json"
    database = json.loads(json_file.read_text())["database"]
    folder = tmp_path_factory.mktemp("thumos_feats")
    rng = np.random.default_rng(0)
    for video_id, video in database.items():
        steps = _num_steps(video["duration"], video["fps"])
        np.save(folder / f"{video_id}.npy", rng.standard_normal((steps, INPUT_DIM), dtype=np.float32))
    return {"json_file": json_file, "feat_folder": folder, "database": database}


def _cfg(thumos: dict[str, Any], **dataset: Any) -> dict[str, Any]:
    base = {"json_file": str(thumos["json_file"]), "feat_folder": str(thumos["feat_folder"]),
            "input_dim": INPUT_DIM, "num_classes": 20, "feat_stride": 4, "num_frames": 16,
            "max_seq_len": 2304, "crop_ratio": [0.9, 1.0], "trunc_thresh": 0.5}
    base.update(dataset)
    return load_config({"dataset_name": "thumos", "train_split": ["validation"], "val_split": ["test"],
                        "dataset": base, "model": {"n_mha_win_size": 19}})


@pytest.mark.needs_shared
def test_split_counts_and_label_map(thumos: dict[str, Any]) -> None:
    with pytest.warns(UserWarning, match="outside the video"):
        train = build_dataset(_cfg(thumos), "train")
    with pytest.warns(UserWarning, match="outside the video"):
        test = build_dataset(_cfg(thumos), "val")
    assert len(train) == 200 and len(test) == 212
    assert {v.subset for v in train.videos} == {"Validation"} and {v.subset for v in test.videos} == {"Test"}
    assert train.label_map == {name: i for i, name in enumerate(THUMOS_LABELS)}
    assert train.empty_label_ids == [] and train.attributes["tiou_thresholds"] == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    assert sum(len(v.labels) for v in train.videos) + sum(len(v.labels) for v in test.videos) == 6365


@pytest.mark.needs_shared
@pytest.mark.filterwarnings("ignore:dataset")
def test_segment_conversion_matches_hand_computed(thumos: dict[str, Any]) -> None:
    test = build_dataset(_cfg(thumos), "val")
    index = [v.video_id for v in test.videos].index("video_test_0000004")
    item = test[index]
    assert set(item) == {"video_id", "feats", "segments", "labels", "fps", "duration", "feat_stride",
                         "feat_num_frames"}
    assert item["feats"].dtype == torch.float32 and item["feats"].shape == (INPUT_DIM, _num_steps(33.83, 30.0))
    # CricketBowling [0.2, 1.1] s at 30 fps: ((0.2 * 30) - 8) / 4 = -0.5, ((1.1 * 30) - 8) / 4 = 6.25.
    assert item["segments"].dtype == torch.float32
    assert item["segments"][0].tolist() == pytest.approx([-0.5, 6.25], abs=1e-6)
    # CricketShot [1.0, 1.5] s: (30 - 8) / 4 = 5.5, (45 - 8) / 4 = 9.25.
    assert item["segments"][4].tolist() == pytest.approx([5.5, 9.25], abs=1e-6)
    assert item["labels"].dtype == torch.int64 and item["labels"].tolist() == [5, 5, 5, 5, 6, 6, 6]
    assert (item["fps"], item["duration"], item["feat_stride"], item["feat_num_frames"]) == (30.0, 33.83, 4, 16)
    # downsample_rate 2: every other feature, stride 8: (6 - 8) / 8 = -0.25, (33 - 8) / 8 = 3.125.
    down = build_dataset(_cfg(thumos, downsample_rate=2), "val")[index]
    assert down["feat_stride"] == 8 and down["feats"].shape[1] == (item["feats"].shape[1] + 1) // 2
    assert torch.equal(down["feats"], item["feats"][:, ::2])
    assert down["segments"][0].tolist() == pytest.approx([-0.25, 3.125], abs=1e-6)


@pytest.mark.needs_shared
@pytest.mark.filterwarnings("ignore:dataset")
def test_training_items_are_truncated_to_max_seq_len(thumos: dict[str, Any]) -> None:
    train = build_dataset(_cfg(thumos, max_seq_len=576), "train")
    longest = max(range(len(train)), key=lambda i: train.videos[i].duration_sec)
    item = train[longest]
    offset = 0.5 * 16 / 4
    assert item["feats"].shape == (INPUT_DIM, 576)
    assert len(item["segments"]) >= 1 and len(item["labels"]) == len(item["segments"])
    assert float(item["segments"].min()) >= -offset and float(item["segments"].max()) <= 576 + offset
    # Evaluation items are whole.
    whole = build_dataset(_cfg(thumos, max_seq_len=576), "train", is_training=False)[longest]
    video = train.videos[longest]
    assert whole["feats"].shape[1] == _num_steps(video.duration_sec, video.fps)


@pytest.mark.needs_shared
def test_missing_feature_file_names_file_and_video(thumos: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "feats"
    folder.mkdir()
    for path in Path(thumos["feat_folder"]).iterdir():
        if path.stem != "video_validation_0000051":
            (folder / path.name).symlink_to(path)
    with pytest.raises(DataFileNotFoundError, match=r"video_validation_0000051\.npy.*video 'video_validation_0000051'.*does not exist"):
        build_dataset(_cfg(thumos, feat_folder=str(folder)), "train")


@pytest.mark.needs_shared
def test_validate_reports_thumos14_annotation_quirks(thumos: dict[str, Any], tmp_path: Path) -> None:
    cfg = _cfg(thumos)
    report = validate_dataset(tmp_path, cfg, check_values=False)
    assert report.ok, report.format()
    assert report.videos_per_subset == {"Validation": 200, "Test": 212} and report.num_labels == 20
    # Five THUMOS14 videos have annotations past their duration (e.g. video_test_0000270).
    outside = {p.video_id for p in report.warnings if p.code == "segment_outside"}
    assert outside == {"video_test_0000270", "video_test_0000814", "video_test_0001081",
                       "video_validation_0000364", "video_validation_0000856"}
    assert report.lengths is not None and not report.lengths.off and report.lengths.median_ratio == pytest.approx(1, abs=0.01)
    with pytest.raises(DataError, match="video_test_0000270.*outside the video"):
        build_dataset(cfg, "val", strict=True)
