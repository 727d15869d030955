"""Truncation, ActivityNet's resize and segment filter, EPIC's .npz, against hand-computed values."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal_lab.data import DataError
from tal_lab.data.actionformer import ActivityNetDataset, EpicKitchensDataset
from tal_lab.data.transforms import drop_segments_past_features, resize_features, truncate_video


class ScriptedRng(random.Random):
    """randint returns scripted values (checked against the requested range)."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(0)
        self.values = list(values)
        self.calls: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:  # type: ignore[override]
        self.calls.append((a, b))
        value = self.values.pop(0)
        assert a <= value <= b
        return value


def _video(feat_len: int = 100) -> dict[str, Any]:
    return {"video_id": "v", "feats": torch.arange(feat_len, dtype=torch.float32).repeat(3, 1),
            "segments": torch.tensor([[10.0, 20.0], [35.0, 50.0], [90.0, 95.0]]),
            "labels": torch.tensor([1, 2, 3]), "fps": 30.0, "duration": 14.0, "feat_stride": 4, "feat_num_frames": 16}


def test_truncation_keeps_actions_over_threshold_and_shifts_them() -> None:
    rng = ScriptedRng([30])
    out = truncate_video(_video(), max_seq_len=40, trunc_thresh=0.5, offset_grid=2.0, crop_ratio=None, rng=rng)
    # Window [30, 70] widened by the offset to [28, 72]: only [35, 50] overlaps, shifted by 30.
    assert rng.calls == [(0, 60)]
    assert torch.equal(out["feats"], _video()["feats"][:, 30:70])
    assert out["segments"].tolist() == [[5.0, 20.0]] and out["labels"].tolist() == [2]


def test_truncation_retries_until_an_action_is_kept_and_clips() -> None:
    # Window [50, 90] -> [48, 92]: [35, 50] keeps 2/15, [90, 95] keeps 2/5, both < 0.5: retry.
    # Window [0, 40] -> [-2, 42]: [10, 20] whole, [35, 50] clipped to [35, 42] = 7/15 < 0.5.
    rng = ScriptedRng([50, 0])
    out = truncate_video(_video(), 40, 0.5, 2.0, None, rng)
    assert len(rng.calls) == 2
    assert out["segments"].tolist() == [[10.0, 20.0]] and out["labels"].tolist() == [1]
    # trunc_thresh 0.4 keeps the clipped [35, 42] as well.
    out = truncate_video(_video(), 40, 0.4, 2.0, None, ScriptedRng([0]))
    assert out["segments"].tolist() == [[10.0, 20.0], [35.0, 42.0]]


def test_crop_ratio_crops_short_videos() -> None:
    video = _video(feat_len=30)
    video["segments"] = torch.tensor([[5.0, 12.0], [20.0, 29.0]])
    video["labels"] = torch.tensor([0, 1])
    # Length drawn in [round(0.9 * 30), 30] = [27, 30]; 27 -> start in [0, 3]; 2 -> window [2, 29].
    rng = ScriptedRng([27, 2])
    out = truncate_video(video, 40, 0.5, 2.0, [0.9, 1.0], rng)
    assert rng.calls == [(27, 30), (0, 3)]
    assert out["feats"].shape == (3, 27) and float(out["feats"][0, 0]) == 2.0
    assert out["segments"].tolist() == [[3.0, 10.0], [18.0, 27.0]]
    # Drawing the full length returns the video unchanged; no crop_ratio leaves it alone.
    assert truncate_video(video, 40, 0.5, 2.0, [0.9, 1.0], ScriptedRng([30])) is video
    assert truncate_video(video, 40, 0.5, 2.0, None, ScriptedRng([])) is video


def test_resize_and_anet_segment_filter() -> None:
    feats = torch.tensor([[0.0, 10.0]])
    # Linear, align_corners=False: output i samples input (i + 0.5) * 2 / 4 - 0.5, clamped.
    assert resize_features(feats, 4).tolist() == [[0.0, 2.5, 7.5, 10.0]]
    segments = torch.tensor([[1.0, 5.0], [9.0, 14.0], [11.0, 12.0], [7.0, 20.0]])
    labels = torch.tensor([0, 1, 2, 3])
    # Features end at 10 + 0.5 offset = 10.5: [9, 14] keeps 1.5 / 5 = 0.3, [7, 20] keeps 3.5 / 13.
    kept, kept_labels = drop_segments_past_features(segments, labels, 10, 0.5, 0.25)
    assert kept.tolist() == [[1.0, 5.0], [9.0, 10.5], [7.0, 10.5]] and kept_labels.tolist() == [0, 1, 3]


def _write(tmp_path: Path, feats: np.ndarray, ext: str, acts: list[dict[str, Any]]) -> dict[str, Any]:
    database = {"vid": {"subset": "training", "duration": 10.0, "fps": 30.0, "annotations": acts}}
    (tmp_path / "anno.json").write_text(json.dumps({"database": database}))
    (tmp_path / "f").mkdir()
    if ext == ".npz":
        np.savez(tmp_path / "f" / "v_vid.npz", feats=feats)
    else:
        np.save(tmp_path / "f" / "v_vid.npy", feats)
    return {"json_file": str(tmp_path / "anno.json"), "feat_folder": str(tmp_path / "f"), "file_prefix": "v_",
            "file_ext": ext, "num_classes": 2, "input_dim": feats.shape[1], "feat_stride": 16, "num_frames": 16,
            "default_fps": None, "downsample_rate": 1, "max_seq_len": 32, "trunc_thresh": 0.5, "crop_ratio": None,
            "force_upsampling": True}


def test_anet_force_upsampling(tmp_path: Path) -> None:
    acts = [{"label": "a", "segment": [1.0, 4.0], "label_id": 0}, {"label": "b", "segment": [5.0, 9.0], "label_id": 1},
            {"label": "b", "segment": [5.0, 9.0005], "label_id": 1}]  # a duplicate, dropped
    cfg = _write(tmp_path, np.arange(18 * 4, dtype=np.float32).reshape(18, 4), ".npy", acts)
    item = ActivityNetDataset(cfg, ["training"], is_training=False)[0]
    # Stride ((18 - 1) * 16 + 16) / 32 = 9 frames, num_frames = 9: grid = (sec * 30 - 4.5) / 9.
    assert item["feat_stride"] == 9.0 and item["feat_num_frames"] == 9.0 and item["feats"].shape == (4, 32)
    expected = torch.tensor([[25.5 / 9, 115.5 / 9], [145.5 / 9, 265.5 / 9]])
    torch.testing.assert_close(item["segments"], expected, atol=1e-5, rtol=0)
    assert item["labels"].tolist() == [0, 1]
    cfg["num_classes"] = 1  # proposals: one class
    assert ActivityNetDataset(cfg, ["training"], is_training=False)[0]["labels"].tolist() == [0, 0]


def test_epic_npz_features_and_empty_classes(tmp_path: Path) -> None:
    acts = [{"label": "cut", "segment": [1.0, 4.0], "label_id": 2}]
    cfg = _write(tmp_path, np.ones((17, 6), dtype=np.float32), ".npz", acts)
    cfg.update(num_classes=4, force_upsampling=False, num_frames=32)
    ds = EpicKitchensDataset(cfg, ["training"], is_training=False)
    item = ds[0]
    assert item["feats"].shape == (6, 17) and ds.empty_label_ids == [0, 1, 3]
    # (30 - 16) / 16 = 0.875, (120 - 16) / 16 = 6.5.
    assert item["segments"].tolist() == [[0.875, 6.5]]
    np.savez(tmp_path / "f" / "v_vid.npz", features=np.ones((17, 6), dtype=np.float32))
    with pytest.raises(DataError, match=r"v_vid\.npz \(video 'vid'\): has no array 'feats' \(arrays: \['features'\]\)"):
        ds[0]


def test_channels_first_copies_blocks_exactly() -> None:
    from tal_lab.data.features import channels_first

    array = np.random.default_rng(0).standard_normal((131, 5)).astype(np.float32)
    out = channels_first(array[::2])
    assert out.is_contiguous() and out.dtype == torch.float32
    assert np.array_equal(out.numpy(), array[::2].T)


def test_truncation_window_widened_by_the_offset_or_clipped_to_it() -> None:
    """dataset.trunc_window: ActionFormer widens the window by the half-window offset, TriDet clips to it."""
    video = _video(feat_len=10)
    video["segments"] = torch.tensor([[2.0, 4.0], [6.0, 9.0], [6.5, 7.5]])
    video["labels"] = torch.tensor([0, 1, 2])
    # Window [3, 7] (start 3, 4 steps); widened by 0.5: [2.5, 7.5]. trunc_thresh 0.5.
    # widened: [2.5, 4] keeps 1.5 / 2, [6, 7.5] 1.5 / 3, [6.5, 7.5] all: each kept, shifted by 3.
    widened = truncate_video(video, 4, 0.5, 0.5, None, ScriptedRng([3]))
    assert widened["segments"].tolist() == [[-0.5, 1.0], [3.0, 4.5], [3.5, 4.5]]
    assert widened["labels"].tolist() == [0, 1, 2]
    # clipped: [3, 4] keeps 1 / 2, [6, 7] only 1 / 3 (dropped), [6.5, 7] 0.5 / 1.
    clipped = truncate_video(video, 4, 0.5, 0.5, None, ScriptedRng([3]), trunc_window="clipped")
    assert clipped["segments"].tolist() == [[0.0, 1.0], [3.5, 4.0]]
    assert clipped["labels"].tolist() == [0, 2]
    assert torch.equal(clipped["feats"], widened["feats"])
    with pytest.raises(ValueError, match="dataset.trunc_window must be one of"):
        truncate_video(video, 4, 0.5, 0.5, None, ScriptedRng([3]), trunc_window="wide")


def test_activitynet_short_annotations_follow_the_gt_filter(tmp_path: Path) -> None:
    """dataset.gt_filter: ActionFormer's clean-up drops instances shorter than 1e-3 s, TriDet's keeps them."""
    short = 6.0 + 2.0 ** -11  # 0.00049 s long, exact in float32
    acts = [{"label": "a", "segment": [1.0, 4.0], "label_id": 0}, {"label": "b", "segment": [5.0, 5.0], "label_id": 1},
            {"label": "b", "segment": [6.0, short], "label_id": 1},
            {"label": "a", "segment": [1.0, 4.0002], "label_id": 0}]  # a repeat: dropped by both
    cfg = _write(tmp_path, np.ones((18, 4), dtype=np.float32), ".npy", acts)
    with pytest.warns(UserWarning, match="zero length"):
        actionformer = ActivityNetDataset(cfg, ["training"], is_training=False).videos[0]
    with pytest.warns(UserWarning, match="zero length"):
        tridet = ActivityNetDataset({**cfg, "gt_filter": "duplicates"}, ["training"], is_training=False).videos[0]
    assert actionformer.segments_sec.tolist() == [[1.0, 4.0]]
    assert tridet.segments_sec.tolist() == [[1.0, 4.0], [5.0, 5.0], [6.0, short]]
    assert tridet.labels.tolist() == [0, 1, 1]
