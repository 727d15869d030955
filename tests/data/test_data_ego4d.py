"""Ego4D Moment Queries in ActionFormer's on-disk format: files written here, read as its loader reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal_lab.config import load_config
from tal_lab.data import DataError, DataFileNotFoundError, Ego4DDataset, build_dataset, validate_dataset

# Two feature types as ActionFormer's ego4d_*_egovlp configs combine them (sizes shrunk).
DIMS = (6, 2)
LABELS = ["cut_/_chop_/_slice_a_vegetable,_fruit,_or_meat", "wash_dishes_/_utensils_/_bakeware_etc."]


def _clip(subset: str, acts: list[tuple[str, float, float]]) -> dict[str, Any]:
    """A clip entry as ActionFormer's tools/convert_ego4d_trainval.py writes it."""
    return {"subset": subset, "duration": 64.0, "fps": 30.0,
            "annotations": [{"label": label, "segment": [start, end], "segment(frames)": [start * 30, end * 30],
                             "label_id": LABELS.index(label)} for label, start, end in acts]}


@pytest.fixture()
def ego4d(tmp_path: Path) -> dict[str, Any]:
    database = {
        "clip_a": _clip("training", [(LABELS[0], 2.0, 10.0), (LABELS[1], 20.0, 21.5)]),
        "clip_b": _clip("validation", [(LABELS[1], 4.0, 8.0)]),
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "ego4d.json").write_text(json.dumps({"version": "v1", "database": database}))
    folders = []
    for name, dim in zip(("slowfast_features", "egovlp_features"), DIMS):
        folder = tmp_path / name
        folder.mkdir()
        for index, clip in enumerate(database):
            # value = 100 * folder + 10 * clip + channel, so the concatenation order is visible
            base = 100 * len(folders) + 10 * index
            np.save(folder / f"{clip}.npy", np.tile(base + np.arange(dim, dtype=np.float32), (119, 1)))
        folders.append(str(folder))
    return {"root": tmp_path, "folders": folders,
            "dataset": {"json_file": str(tmp_path / "annotations" / "ego4d.json"), "feat_folder": folders,
                        "file_prefix": None, "file_ext": ".npy", "num_classes": 2, "input_dim": sum(DIMS),
                        "feat_stride": 16, "num_frames": 32, "default_fps": 30, "downsample_rate": 1,
                        "max_seq_len": 1024, "trunc_thresh": 0.3, "crop_ratio": [0.9, 1.0],
                        "force_upsampling": False}}


def test_feature_folders_are_concatenated_along_channels_in_order(ego4d: dict[str, Any]) -> None:
    dataset = Ego4DDataset(ego4d["dataset"], ["validation"], is_training=False)
    item = dataset[0]
    assert item["video_id"] == "clip_b" and item["feats"].shape == (8, 119)
    # clip index 1: slowfast channels 10..15, then egovlp 110, 111
    assert item["feats"][:, 0].tolist() == [10, 11, 12, 13, 14, 15, 110, 111]
    # ActionFormer's conversion: (4 s * 30 fps - 0.5 * 32) / 16 = 6.5 and (8 * 30 - 16) / 16 = 14
    assert item["segments"].tolist() == [[6.5, 14.0]] and item["labels"].tolist() == [1]
    assert (item["fps"], item["duration"], item["feat_stride"], item["feat_num_frames"]) == (30.0, 64.0, 16, 32)
    assert dataset.attributes == {"dataset_name": "ego4d", "tiou_thresholds": pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5]),
                                  "empty_label_ids": []}
    assert dataset.feature_files("clip_b") == [Path(f) / "clip_b.npy" for f in ego4d["folders"]]


def test_input_dim_may_list_each_folders_channels(ego4d: dict[str, Any]) -> None:
    dataset = Ego4DDataset({**ego4d["dataset"], "input_dim": list(DIMS)}, ["training"], is_training=False)
    assert dataset.input_dim == 8 and dataset[0]["feats"].shape == (8, 119)
    swapped = Ego4DDataset({**ego4d["dataset"], "input_dim": [2, 6]}, ["training"], is_training=False)
    with pytest.raises(DataError, match=r"slowfast_features/clip_a\.npy.*feature dimension 6 differs"):
        swapped[0]
    with pytest.raises(ValueError, match="lists 3 channel counts but dataset.feat_folder lists 2 folders"):
        Ego4DDataset({**ego4d["dataset"], "input_dim": [2, 3, 3]}, ["training"], is_training=False)


def test_one_folder_and_a_wrong_total(ego4d: dict[str, Any]) -> None:
    single = Ego4DDataset({**ego4d["dataset"], "feat_folder": ego4d["folders"][0], "input_dim": 6}, ["training"],
                          is_training=False)
    assert single[0]["feats"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    wrong = Ego4DDataset({**ego4d["dataset"], "input_dim": 9}, ["training"], is_training=False)
    with pytest.raises(DataError, match=r"hold 6 \+ 2 = 8 channels together but dataset.input_dim is 9"):
        wrong[0]


def test_files_of_different_lengths_and_missing_files_are_errors(ego4d: dict[str, Any]) -> None:
    np.save(Path(ego4d["folders"][1]) / "clip_a.npy", np.zeros((118, 2), dtype=np.float32))
    dataset = Ego4DDataset(ego4d["dataset"], ["training"], is_training=False)
    with pytest.raises(DataError, match=r"different lengths: .*slowfast_features/clip_a\.npy \(119 steps\), "
                                        r".*egovlp_features/clip_a\.npy \(118 steps\)"):
        dataset[0]
    (Path(ego4d["folders"][1]) / "clip_b.npy").unlink()
    with pytest.raises(DataFileNotFoundError, match=r"egovlp_features/clip_b\.npy.*feature file does not exist"):
        Ego4DDataset(ego4d["dataset"], ["validation"], is_training=False)


def test_label_map_must_hold_every_class(ego4d: dict[str, Any]) -> None:
    with pytest.raises(DataError, match="the label map has 2 labels but dataset.num_classes is 3"):
        Ego4DDataset({**ego4d["dataset"], "num_classes": 3}, ["training"], is_training=False)


def test_training_truncates_like_thumos(ego4d: dict[str, Any]) -> None:
    dataset = Ego4DDataset({**ego4d["dataset"], "crop_ratio": None, "max_seq_len": 64}, ["training"],
                           is_training=True, seed=3)
    item = dataset[0]
    assert item["feats"].shape == (8, 64) and len(item["segments"]) >= 1
    assert torch.all(item["segments"][:, 1] > item["segments"][:, 0])


def test_an_ego4d_config_builds_the_dataset_and_validate_covers_it(ego4d: dict[str, Any]) -> None:
    cfg = load_config({"dataset_name": "ego4d", "train_split": ["training"], "val_split": ["validation"],
                       "dataset": ego4d["dataset"]})
    assert isinstance(build_dataset(cfg, "train"), Ego4DDataset)
    report = validate_dataset(ego4d["root"], cfg)
    assert report.ok and report.videos_per_subset == {"training": 1, "validation": 1}, report.format()
    np.save(Path(ego4d["folders"][1]) / "clip_a.npy", np.zeros((119, 3), dtype=np.float32))
    (Path(ego4d["folders"][0]) / "clip_b.npy").unlink()
    report = validate_dataset(ego4d["root"], cfg, check_values=False)
    assert sorted(p.code for p in report.errors) == ["dim", "missing_file"], report.format()
    assert "hold 6 + 3 = 9 channels together but dataset.input_dim is 8" in report.format()
    assert "egovlp_features/clip_a.npy" in report.format() and "slowfast_features/clip_b.npy" in report.format()
