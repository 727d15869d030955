"""The synthetic THUMOS14-shaped benchmark: determinism, shapes, statistics and the class signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tal_lab.config import load_config
from tal_lab.data import build_dataset, dataset_digest, generate_synthetic, knobs_from_mapping
from tal_lab.data.synthetic import class_patterns, num_feature_steps, synthesize_features
from tal_lab.data.synthetic_layout import Event, VideoLayout
from tal_lab.data.synthetic_spec import SYNTHETIC_PRESETS, SyntheticKnobs, load_thumos14_stats
from tal_lab.data.validate import validate_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate_synthetic(out, "tiny", seed=3)
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tiny: Path, tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "again", "tiny", seed=3)
    generate_synthetic(tmp_path / "other", "tiny", seed=4)
    assert dataset_digest(tmp_path / "again") == dataset_digest(tiny)
    assert dataset_digest(tmp_path / "other") != dataset_digest(tiny)


def test_folder_is_actionformer_format_and_validates(tiny: Path) -> None:
    database = json.loads((tiny / "annotations.json").read_text())["database"]
    subsets = [v["subset"] for v in database.values()]
    assert subsets.count("Validation") == SYNTHETIC_PRESETS["tiny"].num_train_videos
    assert subsets.count("Test") == SYNTHETIC_PRESETS["tiny"].num_test_videos
    names = {c["label_id"]: c["label"] for c in load_thumos14_stats()["classes"]}
    for video_id, video in database.items():
        feats = np.load(tiny / "features" / f"{video_id}.npy")
        assert feats.dtype == np.float32 and feats.shape == (num_feature_steps(video["duration"]), 16)
        assert video["fps"] == 30.0 and len(video["annotations"]) >= 1
        segments = sorted(a["segment"] for a in video["annotations"])
        for (start, end), nxt in zip(segments, segments[1:] + [[video["duration"], None]]):
            assert 0 <= start < end <= nxt[0] <= video["duration"]  # inside, ordered, no overlap
        assert all(names[a["label_id"]] == a["label"] for a in video["annotations"])
    report = validate_dataset(tiny)
    assert report.ok and not report.problems, report.format()


def test_written_config_loads_both_splits(tiny: Path) -> None:
    cfg = load_config(tiny / "config.yaml")
    assert cfg["dataset_name"] == "synthetic" and cfg["dataset"]["synthetic"]["seed"] == 3
    assert cfg["dataset"]["synthetic"]["knobs"] == SyntheticKnobs().to_dict()
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    tiny = SYNTHETIC_PRESETS["tiny"]
    assert (len(train), len(val)) == (tiny.num_train_videos, tiny.num_test_videos)
    item = train[0]
    assert item["feats"].shape[0] == 16 and item["feats"].shape[1] <= cfg["dataset"]["max_seq_len"]


def _layout(knobs: SyntheticKnobs) -> VideoLayout:
    actions = (Event(5.0, 15.0, 3, knobs.boundary_blur_sec), Event(40.0, 45.0, 8, knobs.boundary_blur_sec))
    return VideoLayout("v", "Test", 60.0, (3, 8), actions, (Event(25.0, 30.0, 3, 0.5),), (Event(52.0, 55.0, -1, 0.0),))


def test_snr_zero_gives_pure_noise_independent_of_everything_else() -> None:
    quiet = SyntheticKnobs(snr=0.0)
    other = SyntheticKnobs(snr=0.0, confusion=0.1, boundary_blur_sec=3.0, context=5.0, distractor_similarity=0.9)
    feats_a = synthesize_features(_layout(quiet), class_patterns(20, 32, quiet, 0), quiet, 0, (0, 0))
    layout_b = VideoLayout("v", "Test", 60.0, (1,), (Event(20.0, 50.0, 1, 0.0),), (), ())
    feats_b = synthesize_features(layout_b, class_patterns(20, 32, other, 0), other, 0, (0, 0))
    assert np.array_equal(feats_a, feats_b)


def test_noise_is_smooth_like_overlapping_windows() -> None:
    knobs = SyntheticKnobs(snr=0.0)
    layout = VideoLayout("v", "Test", 600.0, (0,), (), (), ())
    feats = synthesize_features(layout, class_patterns(20, 64, knobs, 0), knobs, 0, (0, 0)).astype(np.float64)
    assert feats.std() == pytest.approx(1.0, abs=0.02)
    # 16-frame windows every 4 frames share 3/4, 1/2, 1/4, then nothing, with their neighbours.
    for lag, expected in ((1, 0.75), (2, 0.5), (3, 0.25), (4, 0.0)):
        corr = np.mean(feats[lag:] * feats[:-lag]) / feats.var()
        assert corr == pytest.approx(expected, abs=0.03)


def test_class_signal_follows_actions_with_window_ramps() -> None:
    knobs = SyntheticKnobs(snr=4.0, boundary_blur_sec=0.0, instance_variation=0.0, context=0.0,
                           distractor_rate_per_min=0.0)
    dim = 256
    patterns = class_patterns(20, dim, knobs, 0)
    layout = VideoLayout("v", "Test", 30.0, (3,), (Event(5.0, 15.0, 3, 0.0),), (), ())
    feats = synthesize_features(layout, patterns, knobs, 0, (0, 0)).astype(np.float64)
    noise = synthesize_features(layout, patterns, SyntheticKnobs(snr=0.0), 0, (0, 0)).astype(np.float64)
    # The signal is snr / sqrt(C) x profile x prototype, added to the same noise.
    profile = ((feats - noise) @ patterns.prototypes[3]) / (4.0 / np.sqrt(dim) * patterns.prototypes[3] @ patterns.prototypes[3])
    # Frames 150..449 are inside [5 s, 15 s); feature t averages frames [4t, 4t + 16).
    np.testing.assert_allclose(profile[32:39], [0, 0, 2 / 16, 6 / 16, 10 / 16, 14 / 16, 1], atol=1e-5)
    np.testing.assert_allclose(profile[108:114], [1, 14 / 16, 10 / 16, 6 / 16, 2 / 16, 0], atol=1e-5)
    assert np.abs(profile[114:]).max() < 1e-5 and np.abs(profile[:34]).max() < 1e-5
    # Along the prototype, an action step stands snr (d') above unit noise.
    direction = patterns.prototypes[3] / np.linalg.norm(patterns.prototypes[3])
    assert (feats[40:105] @ direction).mean() == pytest.approx(4.0, abs=0.4)


def test_knobs_validate_names_and_ranges() -> None:
    assert knobs_from_mapping({"snr": 2}).snr == 2.0
    with pytest.raises(ValueError, match=r"unknown dataset.synthetic.knobs \['snrr'\]"):
        knobs_from_mapping({"snrr": 1.0})
    with pytest.raises(ValueError, match=r"knobs.confusion must lie in \[0, 1\]"):
        knobs_from_mapping({"confusion": 1.5})
    with pytest.raises(ValueError, match=r"knobs.snr must be a finite number >= 0"):
        knobs_from_mapping({"snr": -1})
