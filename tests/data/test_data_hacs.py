"""HACS Segments in TriDet's on-disk format (I3D, SlowFast pickles, TSP): files written here."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal_lab.config import ConfigError, load_config
from tal_lab.data import DataError, DataFileNotFoundError, HacsDataset, build_dataset, validate_dataset

# Features per video: 10 s at TriDet's I3D setting (2 fps, stride 1) of a 15 s video (missing
# frames, as in a few ActivityNet / HACS videos).
STEPS = 20


def _video(subset: str, acts: list[tuple[str, int, float, float]]) -> dict[str, Any]:
    return {"subset": subset, "duration": 15.0, "url": "https://www.youtube.com/watch?v=x",
            "annotations": [{"label": label, "label_id": label_id, "segment": [start, end]}
                            for label, label_id, start, end in acts]}


DATABASE = {
    # an exact repeat (dropped), a near-empty action (kept by TriDet), one starting past the features
    "vid_train": _video("training", [("Archery", 0, 2.0, 5.0), ("Archery", 0, 2.0, 5.0), ("Bowling", 1, 1.0, 1.0005),
                                     ("Bowling", 1, 8.0, 12.0), ("Archery", 0, 12.0, 14.0)]),
    "vid_val": _video("validation", [("Bowling", 1, 3.0, 4.0)]),
}


def _write_json(root: Path) -> Path:
    (root / "annotations").mkdir(exist_ok=True)
    path = root / "annotations" / "HACS_segments_v1.1.1.json"
    path.write_text(json.dumps({"database": DATABASE}))
    return path


def _features(video_index: int, dim: int) -> np.ndarray:
    return (100 * video_index + np.arange(dim, dtype=np.float32))[None, :].repeat(STEPS, axis=0)


def _dataset_cfg(root: Path, backbone: str, **changes: Any) -> dict[str, Any]:
    cfg = {"json_file": str(_write_json(root)), "feat_folder": str(root / "features"), "file_prefix": None,
           "file_ext": ".npy", "num_classes": 2, "input_dim": 4, "feat_stride": 1, "num_frames": 1,
           "default_fps": 2, "downsample_rate": 1, "max_seq_len": 512, "trunc_thresh": 0.5, "crop_ratio": None,
           "force_upsampling": False, "backbone_type": backbone}
    cfg.update(changes)
    return cfg


@pytest.fixture()
def i3d(tmp_path: Path) -> dict[str, Any]:
    for index, (video_id, video) in enumerate(DATABASE.items()):
        folder = tmp_path / "features" / video["subset"]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{video_id}.npy", _features(index, 4))
    return _dataset_cfg(tmp_path, "i3d")


def test_i3d_features_come_from_the_splits_folder(i3d: dict[str, Any]) -> None:
    val = HacsDataset(i3d, ["validation"], is_training=False)
    assert val.feature_files("vid_val") == [Path(i3d["feat_folder"]) / "validation" / "vid_val.npy"]
    item = val[0]
    assert item["feats"].shape == (4, STEPS) and item["feats"][:, 0].tolist() == [100, 101, 102, 103]
    # TriDet's conversion: (3 s * 2 fps - 0.5 * 1) / 1 = 5.5
    assert item["segments"].tolist() == [[5.5, 7.5]] and item["labels"].tolist() == [1]
    assert val.attributes["dataset_name"] == "HACS"
    assert val.attributes["tiou_thresholds"] == pytest.approx(np.linspace(0.5, 0.95, 10).tolist())


def test_duplicates_go_near_empty_actions_stay_and_training_clips_to_the_features(i3d: dict[str, Any]) -> None:
    (video,) = HacsDataset(i3d, ["training"], is_training=False).videos
    np.testing.assert_allclose(video.segments_sec, [[2.0, 5.0], [1.0, 1.0005], [8.0, 12.0], [12.0, 14.0]])
    item = HacsDataset(i3d, ["training"], is_training=True)[0]
    # 12 s -> 23.5 starts past the 20 features: dropped; [15.5, 23.5] is clipped to 20 (TriDet),
    # where ActionFormer's ActivityNet rule would clip to 20 + 0.25 (the half-window offset).
    np.testing.assert_allclose(item["segments"].numpy(), [[3.5, 9.5], [1.5, 1.501], [15.5, 20.0]], rtol=1e-6)
    assert item["labels"].tolist() == [0, 1, 1]
    # ActionFormer's clean-up (the recipe option's other choice) drops the near-empty action too
    (strict,) = HacsDataset({**i3d, "gt_filter": "duplicates_and_short"}, ["training"], is_training=False).videos
    np.testing.assert_allclose(strict.segments_sec, [[2.0, 5.0], [8.0, 12.0], [12.0, 14.0]])


def test_one_class_gives_proposals_and_the_label_map_is_checked(i3d: dict[str, Any]) -> None:
    proposals = HacsDataset({**i3d, "num_classes": 1}, ["training"], is_training=False)
    assert proposals.videos[0].labels.tolist() == [0, 0, 0, 0]
    with pytest.raises(DataError, match="the label map has 2 labels but dataset.num_classes is 3"):
        HacsDataset({**i3d, "num_classes": 3}, ["training"], is_training=False)


def test_missing_split_folder_or_file(i3d: dict[str, Any]) -> None:
    (Path(i3d["feat_folder"]) / "validation" / "vid_val.npy").unlink()
    with pytest.raises(DataFileNotFoundError, match=r"validation/vid_val\.npy.*feature file does not exist"):
        HacsDataset(i3d, ["validation"], is_training=False)
    with pytest.raises(DataFileNotFoundError, match=r"features/testing: feature folder does not exist"):
        HacsDataset(i3d, ["testing"], is_training=False)


def _pickle(path: Path, content: Any) -> None:
    with open(path, "wb") as handle:
        pickle.dump(content, handle)


def test_slowfast_pickles_concatenate_slow_then_fast(tmp_path: Path) -> None:
    folder = tmp_path / "features" / "validation"
    folder.mkdir(parents=True)
    slow = torch.arange(3 * STEPS, dtype=torch.float16).reshape(1, 3, STEPS)
    fast = -torch.ones(1, 2, STEPS)
    _pickle(folder / "vid_val.pkl", {"slow_feature": slow, "fast_feature": fast})
    cfg = _dataset_cfg(tmp_path, "slowfast", file_ext=".pkl", input_dim=5, feat_stride=8, num_frames=32,
                       default_fps=15, file_prefix="ignored_")
    item = HacsDataset(cfg, ["validation"], is_training=False)[0]
    assert item["feats"].dtype == torch.float32 and item["feats"].shape == (5, STEPS)
    assert torch.equal(item["feats"][:3], slow[0].float()) and torch.equal(item["feats"][3:], fast[0])
    # (3 s * 15 fps - 16) / 8 = 3.625
    assert item["segments"].tolist() == [[3.625, 5.5]]


def test_a_pickle_naming_anything_but_tensors_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "features" / "validation"
    folder.mkdir(parents=True)

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("echo unsafe",))

    _pickle(folder / "vid_val.pkl", {"slow_feature": Payload(), "fast_feature": torch.zeros(1, 2, 3)})
    cfg = _dataset_cfg(tmp_path, "slowfast", file_ext=".pkl", input_dim=5)
    with pytest.raises(DataError, match=r"vid_val\.pkl.*not a readable HACS SlowFast pickle: refusing to load"):
        HacsDataset(cfg, ["validation"], is_training=False)[0]
    _pickle(folder / "vid_val.pkl", {"slow_feature": torch.zeros(1, 3, 4)})
    with pytest.raises(DataError, match=r"expected a dict with \['slow_feature', 'fast_feature'\]"):
        HacsDataset(cfg, ["validation"], is_training=False)[0]


def test_tsp_files_carry_the_v_prefix_and_no_split_folder(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    np.save(tmp_path / "features" / "v_vid_val.npy", _features(0, 4))
    dataset = HacsDataset(_dataset_cfg(tmp_path, "tsp"), ["validation"], is_training=False)
    assert dataset.feature_files("vid_val") == [tmp_path / "features" / "v_vid_val.npy"]
    assert dataset[0]["feats"].shape == (4, STEPS)


def test_a_hacs_config_needs_its_feature_type_and_validate_covers_the_split_folders(i3d: dict[str, Any]) -> None:
    base = {"dataset_name": "hacs", "train_split": ["training"], "val_split": ["validation"],
            "model": {"sgp_mlp_dim": 768, "n_sgp_win_size": 1}}
    with pytest.raises(ConfigError, match="dataset.backbone_type.*None is not one of"):
        load_config({**base, "dataset": {**i3d, "backbone_type": None}})
    cfg = load_config({**base, "dataset": i3d})
    assert cfg["dataset"]["gt_filter"] == "duplicates"  # read in TriDet's dialect
    assert isinstance(build_dataset(cfg, "val"), HacsDataset)
    root = Path(i3d["feat_folder"]).parent
    for video_id, video in DATABASE.items():  # whole videos this time (15 s at 2 fps), as validate expects
        np.save(Path(i3d["feat_folder"]) / video["subset"] / f"{video_id}.npy", np.zeros((30, 4), dtype=np.float32))
    report = validate_dataset(root, cfg)
    assert report.ok and report.videos_per_subset == {"training": 1, "validation": 1}, report.format()
    (Path(i3d["feat_folder"]) / "validation" / "vid_val.npy").rename(Path(i3d["feat_folder"]) / "vid_val.npy")
    report = validate_dataset(root, cfg)
    assert [(p.code, Path(p.file).parent.name) for p in report.errors] == [("missing_file", "validation")]
