"""The synthetic THUMOS14-shaped benchmark: features with a class signal, written in ActionFormer's format.

``generate_synthetic(out, preset='quick', seed=0)`` writes::

    out/annotations.json      ActionFormer-format JSON ('Validation' trains, 'Test' evaluates)
    out/features/{video_id}.npy   one (T, C) float32 array per video
    out/config.yaml           a complete ActionFormer-schema config pointing at both

so the real loader path (``dataset_name: synthetic`` reads like THUMOS14) is what runs, and
``tal-lab data validate out`` needs nothing else. The same seed gives the same bytes in the
JSON, in every feature file and in the config: its data paths are relative to the config's own
folder (``dataset.paths_relative_to: config``, :mod:`tal_lab.config.paths`), so the folder
can be copied or moved whole.

Features mimic I3D features of THUMOS14: 30 fps, one feature per 4 frames from 16-frame
windows. Feature ``t`` averages what its window [4t, 4t + 16) frames sees, so signals ramp over
4 steps at every edge, and the noise is the average of the window's four 4-frame blocks of
white noise (unit variance, correlation 0.75 between neighbours), as overlapping windows are.
Each visible event adds ``amplitude * profile(t) * direction``: actions (their class prototype
plus per-instance variation), distractors (a pattern resembling one class) and context cues
(a pattern naming the video's classes); :mod:`tal_lab.data.synthetic_spec` documents the knobs.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tal_lab.config import dump_config, load_config
from tal_lab.config.published import THUMOS_I3D, published_config
from tal_lab.data.synthetic_layout import Event, VideoLayout, sample_layout, sample_video_rows
from tal_lab.data.synthetic_spec import (SyntheticKnobs, SyntheticPreset, get_preset, knobs_from_mapping,
                                         load_thumos14_stats)

__all__ = ["FPS", "FEAT_STRIDE", "NUM_FRAMES", "ClassPatterns", "class_patterns", "synthesize_features",
           "num_feature_steps", "generate_synthetic", "dataset_digest", "SPLITS"]

# THUMOS14 I3D features as ActionFormer uses them: 30 fps, stride 4 frames, 16-frame windows.
FPS = 30.0
FEAT_STRIDE = THUMOS_I3D["dataset"]["feat_stride"]
NUM_FRAMES = THUMOS_I3D["dataset"]["num_frames"]
# (subset name in the JSON, preset attribute with its size, id prefix), as in THUMOS14.
SPLITS = (("Validation", "num_train_videos", "video_validation"), ("Test", "num_test_videos", "video_test"))
# The generated files, relative to the output folder (and to its config.yaml).
ANNOTATION_FILE = "annotations.json"
FEATURE_FOLDER = "features"
# Independent random streams, so that e.g. the noise does not change when a knob moves events.
_STREAM_PATTERNS, _STREAM_ROWS, _STREAM_LAYOUT, _STREAM_NOISE, _STREAM_VECTORS = range(5)



class ClassPatterns:
    """Directions in feature space: class prototypes and context-cue patterns.

    Shapes:
        prototypes: (num_classes, C), cues: (num_classes, C); entries have unit variance.
    """

    def __init__(self, prototypes: np.ndarray, cues: np.ndarray) -> None:
        self.prototypes = prototypes
        self.cues = cues


def class_patterns(num_classes: int, dim: int, knobs: SyntheticKnobs, seed: int) -> ClassPatterns:
    """Prototype p_k = sqrt(s) g + sqrt(1 - s) u_k (g shared, s = shared_action); within each
    confusable pair (a, b), u_b is remixed to cosine ``confusion`` with u_a."""
    rng = np.random.default_rng([seed, _STREAM_PATTERNS])
    shared = rng.standard_normal(dim)
    specific = rng.standard_normal((num_classes, dim))
    cues = rng.standard_normal((num_classes, dim))
    for a, b in knobs.confusable_pairs:
        if max(a, b) >= num_classes:
            raise ValueError(f"dataset.synthetic.knobs.confusable_pairs: ({a}, {b}) names a class >= {num_classes}")
        specific[b] = knobs.confusion * specific[a] + math.sqrt(1.0 - knobs.confusion**2) * specific[b]
    s = knobs.shared_action
    prototypes = math.sqrt(s) * shared[None, :] + math.sqrt(1.0 - s) * specific
    return ClassPatterns(prototypes, cues)


def num_feature_steps(duration_sec: float, fps: float = FPS) -> int:
    """Windows of NUM_FRAMES frames at stride FEAT_STRIDE that fit in the video (at least 1)."""
    num_frames = int(round(duration_sec * fps))
    return max(1, (num_frames - NUM_FRAMES) // FEAT_STRIDE + 1)


def _window_profile(event: Event, num_steps: int, fps: float) -> tuple[int, np.ndarray]:
    """First step and per-step activation: the window average of a trapezoid with ramps of
    width blur centred on each edge.

    Shapes:
        returns (first_step, (L,) float64) with first_step + L <= num_steps.
    """
    half = 0.5 * event.blur_sec
    first_frame = max(0, int(math.floor((event.start_sec - half) * fps)) - NUM_FRAMES)
    last_frame = int(math.ceil((event.end_sec + half) * fps)) + NUM_FRAMES
    first_step = first_frame // FEAT_STRIDE
    last_step = min(num_steps, last_frame // FEAT_STRIDE + 1)
    if last_step <= first_step:
        return first_step, np.zeros(0)
    frames = np.arange(first_step * FEAT_STRIDE, (last_step - 1) * FEAT_STRIDE + NUM_FRAMES)
    time_sec = (frames + 0.5) / fps
    if event.blur_sec > 0:
        rise = np.clip((time_sec - (event.start_sec - half)) / event.blur_sec, 0.0, 1.0)
        fall = np.clip(((event.end_sec + half) - time_sec) / event.blur_sec, 0.0, 1.0)
        profile = np.minimum(rise, fall)
    else:
        profile = ((time_sec >= event.start_sec) & (time_sec < event.end_sec)).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(profile)])
    starts = np.arange(last_step - first_step) * FEAT_STRIDE
    return first_step, (csum[starts + NUM_FRAMES] - csum[starts]) / NUM_FRAMES


def synthesize_features(
    layout: VideoLayout, patterns: ClassPatterns, knobs: SyntheticKnobs, seed: int, key: tuple[int, int],
    fps: float = FPS,
) -> np.ndarray:
    """The (T, C) float32 features of one video.

    Noise and event directions come from random streams keyed by (seed, key), key = (split
    index, video index in the split), so a video's features do not depend on how many other
    videos are generated.

    Shapes:
        returns (T, C) with T = num_feature_steps(duration), C = patterns' dimension.
    """
    dim = patterns.prototypes.shape[1]
    num_steps = num_feature_steps(layout.duration_sec, fps)
    blocks_per_window = NUM_FRAMES // FEAT_STRIDE
    noise_rng = np.random.default_rng([seed, _STREAM_NOISE, *key])
    blocks = noise_rng.standard_normal((num_steps + blocks_per_window - 1, dim), dtype=np.float32)
    feats = np.zeros((num_steps, dim), dtype=np.float32)
    for j in range(blocks_per_window):
        feats += blocks[j:j + num_steps]
    feats /= np.float32(math.sqrt(blocks_per_window))  # unit variance again
    if knobs.snr == 0:
        return feats
    # Matched-filter SNR d' = snr: directions have unit variance per dimension (norm ~ sqrt(C)).
    unit = knobs.snr / math.sqrt(dim)
    vec_rng = np.random.default_rng([seed, _STREAM_VECTORS, *key])
    iv, rho = knobs.instance_variation, knobs.distractor_similarity
    events: list[tuple[Event, float, np.ndarray]] = []
    for act in layout.actions:
        direction = (patterns.prototypes[act.label] + iv * vec_rng.standard_normal(dim)) / math.sqrt(1 + iv**2)
        events.append((act, unit, direction))
    for dis in layout.distractors:
        direction = rho * patterns.prototypes[dis.label] + math.sqrt(1 - rho**2) * vec_rng.standard_normal(dim)
        events.append((dis, unit, direction))
    if layout.cues:
        cue = patterns.cues[list(layout.classes)].sum(axis=0) / math.sqrt(len(layout.classes))
        events += [(c, unit * knobs.context, cue) for c in layout.cues]
    for event, amplitude, direction in events:
        first, profile = _window_profile(event, num_steps, fps)
        if len(profile):
            feats[first:first + len(profile)] += (amplitude * profile[:, None] * direction[None, :]).astype(np.float32)
    return feats


def _layouts(
    preset: SyntheticPreset, knobs: SyntheticKnobs, seed: int, stats: Mapping[str, Any]
) -> list[tuple[tuple[int, int], VideoLayout]]:
    layouts = []
    for split_index, (subset, size_attr, prefix) in enumerate(SPLITS):
        rows = sample_video_rows(stats["splits"][subset]["videos"], getattr(preset, size_attr),
                                 preset.max_duration_sec, np.random.default_rng([seed, _STREAM_ROWS, split_index]))
        for i, row in enumerate(rows):
            rng = np.random.default_rng([seed, _STREAM_LAYOUT, split_index, i])
            layouts.append(((split_index, i), sample_layout(f"{prefix}_{i + 1:07d}", subset, row, stats, knobs, rng)))
    return layouts


def _annotation_json(layouts: list[VideoLayout], stats: Mapping[str, Any], fps: float) -> dict[str, Any]:
    names = [c["label"] for c in stats["classes"]]
    database = {}
    for layout in layouts:
        database[layout.video_id] = {
            "subset": layout.subset,
            "duration": round(layout.duration_sec, 2),
            "fps": fps,
            "annotations": [{"label": names[a.label], "segment": [a.start_sec, a.end_sec], "label_id": a.label}
                            for a in layout.actions],
        }
    return {"version": "tal_lab synthetic THUMOS14-shaped benchmark", "database": database}


def _config(preset: SyntheticPreset, knobs: SyntheticKnobs, seed: int) -> dict[str, Any]:
    cfg = published_config("thumos")
    cfg["dataset_name"] = "synthetic"
    cfg["dataset"].update({"json_file": ANNOTATION_FILE, "feat_folder": FEATURE_FOLDER, "paths_relative_to": "config",
                           "input_dim": preset.input_dim, "max_seq_len": preset.max_seq_len,
                           "synthetic": {"preset": preset.name, "seed": seed, "knobs": knobs.to_dict()}})
    for section in ("model", "opt", "loader", "train_cfg", "engine"):
        cfg.setdefault(section, {}).update(dict(getattr(preset, section)))
    return load_config(cfg)


def generate_synthetic(
    out: str | Path,
    preset: str | SyntheticPreset = "quick",
    seed: int = 0,
    knobs: SyntheticKnobs | Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic benchmark folder (JSON, features, config.yaml); returns the config path.

    Args:
        out: the folder (created; existing generated files are overwritten).
        preset: 'tiny', 'quick', 'thumos14' or a SyntheticPreset.
        knobs: SyntheticKnobs or a mapping of knob values (the rest keep their defaults).
        progress: print one line per 50 videos.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    knobs = knobs if isinstance(knobs, SyntheticKnobs) else knobs_from_mapping(knobs)
    out = Path(out).resolve()
    (out / FEATURE_FOLDER).mkdir(parents=True, exist_ok=True)
    stats = load_thumos14_stats()
    layouts = _layouts(preset, knobs, seed, stats)
    patterns = class_patterns(len(stats["classes"]), preset.input_dim, knobs, seed)
    for index, (key, layout) in enumerate(layouts):
        feats = synthesize_features(layout, patterns, knobs, seed, key)
        np.save(out / FEATURE_FOLDER / f"{layout.video_id}.npy", feats)
        if progress and (index + 1) % 50 == 0:
            print(f"  {index + 1}/{len(layouts)} videos", flush=True)
    annotations = _annotation_json([layout for _, layout in layouts], stats, FPS)
    (out / ANNOTATION_FILE).write_text(json.dumps(annotations, indent=1, sort_keys=True) + "\n")
    config_path = out / "config.yaml"
    dump_config(_config(preset, knobs, seed), config_path)
    return config_path


def dataset_digest(folder: str | Path) -> str:
    """SHA-256 over the annotation JSON and every feature file (names and bytes), in name order."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in [folder / ANNOTATION_FILE, *sorted((folder / FEATURE_FOLDER).iterdir())]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
