"""The synthetic benchmark's knobs, presets and the THUMOS14 statistics it samples from.

Knobs (``dataset.synthetic.knobs`` in a config; every one has a default):

============================  =========  ===================================================
knob                          default    meaning
============================  =========  ===================================================
``snr``                       5.0        master signal strength: the matched-filter
                                         signal-to-noise ratio (d') of one feature step inside
                                         an action. Every label-dependent component (class
                                         signal, distractors, context cue) scales with it;
                                         at 0 the features are pure noise, independent of the
                                         annotations.
``boundary_blur_sec``         1.0        width of the linear ramps at action edges (on top of
                                         the 16-frame window's own smoothing); each instance
                                         draws its width in [0.5, 1.5] x this value. The
                                         paper's "ambiguous boundaries".
``confusion``                 0.7        cosine similarity of the class-specific signals of
                                         the two classes of each confusable pair (0: as
                                         distinct as any two classes, 1: identical).
``confusable_pairs``          6 pairs    label-id pairs made confusable (default: Diving /
                                         CliffDiving, CricketBowling / CricketShot, Shotput /
                                         ThrowDiscus, HighJump / LongJump, BasketballDunk /
                                         VolleyballSpiking, GolfSwing / TennisSwing).
``distractor_rate_per_min``   1.0        background distractors per minute of video: unlabelled
                                         events whose pattern resembles an action.
``distractor_similarity``     0.6        cosine similarity of a distractor's pattern with the
                                         class it imitates.
``context``                   1.0        strength (relative to ``snr``) of the video-level
                                         context cue: a pattern naming the video's classes,
                                         placed in the background far from every action.
``context_cue_sec``           3.0        length of each cue (one per 2 minutes, at least one).
``context_min_gap_sec``       10.0       cues keep at least this distance from actions when the
                                         video allows, so only long-range models can use them.
``shared_action``             0.5        fraction of every class signal that is a generic
                                         "action" direction shared by all classes (localising
                                         is easier than classifying, as with real features).
``instance_variation``        0.3        per-instance deviation from the class prototype.
============================  =========  ===================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "SyntheticKnobs",
    "SyntheticPreset",
    "SYNTHETIC_PRESETS",
    "DEFAULT_CONFUSABLE_PAIRS",
    "load_thumos14_stats",
    "knobs_from_mapping",
    "get_preset",
]

STATS_FILE = Path(__file__).with_name("thumos14_stats.json")

# THUMOS14 label ids (ActionFormer's thumos14.json) of classes that look alike.
DEFAULT_CONFUSABLE_PAIRS: tuple[tuple[int, int], ...] = (
    (4, 7),    # CliffDiving / Diving
    (5, 6),    # CricketBowling / CricketShot
    (15, 18),  # Shotput / ThrowDiscus
    (11, 13),  # HighJump / LongJump
    (1, 19),   # BasketballDunk / VolleyballSpiking
    (9, 17),   # GolfSwing / TennisSwing
)


@dataclass(frozen=True)
class SyntheticKnobs:
    """How much class signal the features carry and how hard it is to use (see module doc)."""

    snr: float = 5.0
    boundary_blur_sec: float = 1.0
    confusion: float = 0.7
    confusable_pairs: tuple[tuple[int, int], ...] = DEFAULT_CONFUSABLE_PAIRS
    distractor_rate_per_min: float = 1.0
    distractor_similarity: float = 0.6
    context: float = 1.0
    context_cue_sec: float = 3.0
    context_min_gap_sec: float = 10.0
    shared_action: float = 0.5
    instance_variation: float = 0.3

    def __post_init__(self) -> None:
        for name in ("snr", "boundary_blur_sec", "distractor_rate_per_min", "context",
                     "context_min_gap_sec", "instance_variation"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"dataset.synthetic.knobs.{name} must be a finite number >= 0, got {value!r}")
        for name in ("confusion", "distractor_similarity", "shared_action"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"dataset.synthetic.knobs.{name} must lie in [0, 1], got {value!r}")
        if not (isinstance(self.context_cue_sec, (int, float)) and self.context_cue_sec > 0):
            raise ValueError(f"dataset.synthetic.knobs.context_cue_sec must be > 0, got {self.context_cue_sec!r}")
        for pair in self.confusable_pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"dataset.synthetic.knobs.confusable_pairs: {pair!r} is not a pair of two labels")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples) for JSON / YAML."""
        out = asdict(self)
        out["confusable_pairs"] = [list(p) for p in self.confusable_pairs]
        return out


def knobs_from_mapping(values: Mapping[str, Any] | None) -> SyntheticKnobs:
    """Knobs from a config's ``dataset.synthetic.knobs`` mapping (missing keys take defaults).

    Raises:
        ValueError: an unknown knob name (listing the known ones) or an invalid value.
    """
    values = dict(values or {})
    known = {f.name for f in fields(SyntheticKnobs)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown dataset.synthetic.knobs {unknown}; known knobs: {sorted(known)}")
    if "confusable_pairs" in values:
        values["confusable_pairs"] = tuple(tuple(int(c) for c in p) for p in values["confusable_pairs"])
    for key, value in values.items():
        if key != "confusable_pairs" and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
    return SyntheticKnobs(**values)


@dataclass(frozen=True)
class SyntheticPreset:
    """Shape of a generated benchmark and the config written beside it.

    Attributes:
        num_train_videos / num_test_videos: videos drawn from THUMOS14's 'Validation' / 'Test'
            rows (length, action count, class count); None takes every row once.
        max_duration_sec: longer videos are cut to this length, keeping their action density.
        input_dim: feature dimension C.
        max_seq_len: the config's dataset.max_seq_len (training crop length).
        model / opt / loader / train_cfg / engine: overrides of the THUMOS14 (ActionFormer
            thumos_i3d) settings in the written config.
    """

    name: str
    num_train_videos: int | None
    num_test_videos: int | None
    max_duration_sec: float | None
    input_dim: int
    max_seq_len: int
    model: Mapping[str, Any] = field(default_factory=dict)
    opt: Mapping[str, Any] = field(default_factory=dict)
    loader: Mapping[str, Any] = field(default_factory=dict)
    train_cfg: Mapping[str, Any] = field(default_factory=dict)
    engine: Mapping[str, Any] = field(default_factory=dict)


# ActionFormer averages weights with decay 0.999 over ~3,500 THUMOS14 iterations (a horizon of
# ~1,000, about 30 % of training). Short CPU schedules of a few hundred iterations keep that
# proportion with 0.99; at 0.999 their averaged weights would still be ~60 % initialisation.
_SHORT_SCHEDULE_ENGINE = {"ema_decay": 0.99}

# Model width used on CPU: the full THUMOS14 model is 512 wide with 2048-d inputs.
_SMALL_MODEL = {"embd_dim": 128, "fpn_dim": 128, "head_dim": 128, "n_head": 4, "sgp_mlp_dim": 192}

SYNTHETIC_PRESETS: dict[str, SyntheticPreset] = {
    # A handful of short videos for tests: seconds to generate, load and train on.
    "tiny": SyntheticPreset("tiny", 6, 4, 40.0, 16, 576,
                            model={"embd_dim": 32, "fpn_dim": 32, "head_dim": 32, "n_head": 4, "sgp_mlp_dim": 48},
                            opt={"epochs": 2, "warmup_epochs": 1, "learning_rate": 1e-3},
                            loader={"batch_size": 2, "num_workers": 0}, engine=_SHORT_SCHEDULE_ENGINE),
    # One configuration trains and evaluates in about two minutes on 2 CPU cores.
    "quick": SyntheticPreset("quick", 64, 48, 240.0, 64, 576, model=_SMALL_MODEL,
                             opt={"epochs": 12, "warmup_epochs": 2, "learning_rate": 1e-3},
                             loader={"batch_size": 2, "num_workers": 1}, engine=_SHORT_SCHEDULE_ENGINE),
    # Full THUMOS14 shapes for GPU machines: 200 / 212 videos of the real lengths, 2048-d.
    "thumos14": SyntheticPreset("thumos14", None, None, None, 2048, 2304),
}


def get_preset(name: str) -> SyntheticPreset:
    """The preset called ``name``.

    Raises:
        ValueError: unknown name (listing the presets).
    """
    if name not in SYNTHETIC_PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; choose one of {sorted(SYNTHETIC_PRESETS)}")
    return SYNTHETIC_PRESETS[name]


@lru_cache(maxsize=1)
def _stats_text() -> str:
    return STATS_FILE.read_text()


def load_thumos14_stats() -> dict[str, Any]:
    """The derived THUMOS14 statistics shipped with the package (``thumos14_stats.json``)."""
    return json.loads(_stats_text())

