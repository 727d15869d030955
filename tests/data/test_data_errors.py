"""Every bad input gets an error (or warning) naming the file, the video and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tal_lab.data import DataError, DataFileNotFoundError
from tal_lab.data.actionformer import ThumosDataset

DIM = 8


def _video(subset: str = "Validation", duration: float = 20.0, acts: list[Any] | None = None) -> dict[str, Any]:
    if acts is None:
        acts = [{"label": "Jump", "segment": [2.0, 5.0], "label_id": 0},
                {"label": "Throw", "segment": [8.0, 9.5], "label_id": 1}]
    return {"subset": subset, "duration": duration, "fps": 30.0, "annotations": acts}


def _write(tmp_path: Path, database: dict[str, Any], feats: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    json_file = tmp_path / "anno.json"
    json_file.write_text(json.dumps({"database": database}))
    folder = tmp_path / "feats"
    folder.mkdir(exist_ok=True)
    for video_id in database:
        array = (feats or {}).get(video_id, np.ones((147, DIM), dtype=np.float32))
        np.save(folder / f"{video_id}.npy", array)
    return {"json_file": str(json_file), "feat_folder": str(folder), "file_prefix": None, "file_ext": ".npy",
            "num_classes": 2, "input_dim": DIM, "feat_stride": 4, "num_frames": 16, "default_fps": None,
            "downsample_rate": 1, "max_seq_len": 576, "trunc_thresh": 0.5, "crop_ratio": None,
            "force_upsampling": False}


def _dataset(cfg: dict[str, Any], **kwargs: Any) -> ThumosDataset:
    return ThumosDataset(cfg, ["validation"], is_training=False, **kwargs)


def test_good_input_loads(tmp_path: Path) -> None:
    ds = _dataset(_write(tmp_path, {"v1": _video(), "v2": _video()}))
    assert len(ds) == 2 and ds[0]["feats"].shape == (DIM, 147)


def test_missing_json(tmp_path: Path) -> None:
    cfg = _write(tmp_path, {"v1": _video()})
    cfg["json_file"] = str(tmp_path / "nope.json")
    with pytest.raises(DataFileNotFoundError, match=r"nope\.json: annotation JSON does not exist"):
        _dataset(cfg)


def test_unreadable_json(tmp_path: Path) -> None:
    cfg = _write(tmp_path, {"v1": _video()})
    Path(cfg["json_file"]).write_text("{not json")
    with pytest.raises(DataError, match=r"anno\.json: annotation JSON is not readable"):
        _dataset(cfg)
    Path(cfg["json_file"]).write_text(json.dumps({"videos": {}}))
    with pytest.raises(DataError, match=r"anno\.json: annotation JSON has no 'database'"):
        _dataset(cfg)


def test_missing_feature_files_are_all_listed(tmp_path: Path) -> None:
    cfg = _write(tmp_path, {"v1": _video(), "v2": _video(), "v3": _video()})
    (Path(cfg["feat_folder"]) / "v1.npy").unlink()
    (Path(cfg["feat_folder"]) / "v3.npy").unlink()
    with pytest.raises(DataFileNotFoundError) as info:
        _dataset(cfg)
    text = str(info.value)
    assert "2 problem(s)" in text
    assert "v1.npy (video 'v1'): feature file does not exist" in text and "(video 'v3')" in text
    cfg["feat_folder"] = str(tmp_path / "no_folder")
    with pytest.raises(DataFileNotFoundError, match="no_folder: feature folder does not exist"):
        _dataset(cfg)


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.ones((147, 5), dtype=np.float32), r"v2\.npy \(video 'v2'\): feature dimension 5 differs from dataset.input_dim 8"),
        (np.zeros((0, DIM), dtype=np.float32), r"v2\.npy \(video 'v2'\): zero-length features"),
        (np.ones(147, dtype=np.float32), r"v2\.npy \(video 'v2'\): features must be a \(T, C\) array"),
    ],
)
def test_bad_feature_shapes(tmp_path: Path, array: np.ndarray, pattern: str) -> None:
    ds = _dataset(_write(tmp_path, {"v1": _video(), "v2": _video()}, {"v2": array}))
    ds[0]  # the good video still loads
    with pytest.raises(DataError, match=pattern):
        ds[1]


def test_nan_and_inf_values(tmp_path: Path) -> None:
    bad = np.ones((147, DIM), dtype=np.float32)
    bad[10, 3] = np.nan
    bad[20, :2] = np.inf
    ds = _dataset(_write(tmp_path, {"v1": _video()}, {"v1": bad}))
    with pytest.raises(DataError, match=r"v1\.npy \(video 'v1'\): features hold 1 NaN and 2 infinite values \(first at step 10\)"):
        ds[0]


def test_unreadable_feature_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path, {"v1": _video()})
    (Path(cfg["feat_folder"]) / "v1.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"v1\.npy \(video 'v1'\): feature file is not a readable numpy array"):
        _dataset(cfg)[0]


def test_segment_ending_before_start(tmp_path: Path) -> None:
    acts = [{"label": "Jump", "segment": [5.0, 2.0], "label_id": 0}, {"label": "Throw", "segment": [1, 2], "label_id": 1}]
    with pytest.raises(DataError, match=r"anno\.json \(video 'v7'\): annotation 0 \('Jump'\): segment \[5.0, 2.0\] s ends before it starts"):
        _dataset(_write(tmp_path, {"v1": _video(), "v7": _video(acts=acts)}))


def test_segment_outside_video_warns_or_raises_when_strict(tmp_path: Path) -> None:
    acts = [{"label": "Jump", "segment": [18.0, 25.0], "label_id": 0}, {"label": "Throw", "segment": [1, 2], "label_id": 1}]
    cfg = _write(tmp_path, {"v1": _video(), "v8": _video(acts=acts)})
    message = r"anno\.json \(video 'v8'\): annotation 0 \('Jump'\): segment \[18.0, 25.0\] s lies outside the video \[0, 20.0\] s"
    with pytest.warns(UserWarning, match=message):
        assert len(_dataset(cfg)) == 2
    with pytest.raises(DataError, match=message):
        _dataset(cfg, strict=True)


def test_label_absent_from_label_map(tmp_path: Path) -> None:
    acts = [{"label": "Jump", "segment": [2.0, 5.0], "label_id": 0}, {"label": "Swim", "segment": [6.0, 7.0]},
            {"label": "Throw", "segment": [1, 2], "label_id": 1}]
    with pytest.raises(DataError, match=r"\(video 'v9'\): annotation 1: label 'Swim' is absent from the label map"):
        _dataset(_write(tmp_path, {"v9": _video(acts=acts)}))


def test_label_map_inconsistencies(tmp_path: Path) -> None:
    acts = [{"label": "Jump", "segment": [2.0, 5.0], "label_id": 0}, {"label": "Throw", "segment": [1, 2], "label_id": 5}]
    with pytest.raises(DataError, match=r"label 'Throw' has label_id 5, outside the label map 0\.\.1 \(dataset.num_classes 2\)"):
        _dataset(_write(tmp_path, {"v1": _video(acts=acts)}))
    acts = [{"label": "Jump", "segment": [2.0, 5.0], "label_id": 0}, {"label": "Jump", "segment": [6, 7], "label_id": 1}]
    with pytest.raises(DataError, match=r"label 'Jump' has label_id 1 here but 0 in video 'v1'"):
        _dataset(_write(tmp_path, {"v1": _video(), "v2": _video(acts=acts)}))
    acts = [{"label": "Jump", "segment": [2.0, 5.0], "label_id": 0}]
    with pytest.raises(DataError, match="the label map has 1 labels but dataset.num_classes is 2"):
        _dataset(_write(tmp_path, {"v1": _video(acts=acts)}))


def test_missing_fps_and_empty_split(tmp_path: Path) -> None:
    video = _video()
    del video["fps"]
    with pytest.raises(DataError, match=r"\(video 'v1'\): has no valid fps \(None\) and dataset.default_fps is null"):
        _dataset(_write(tmp_path, {"v1": video, "v2": _video()}))
    cfg = _write(tmp_path, {"v1": _video()})
    with pytest.raises(DataError, match=r"split \['test'\] selects no videos \(subsets present: \['Validation'\]"):
        ThumosDataset(cfg, ["test"], is_training=False)
