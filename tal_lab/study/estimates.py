"""How long a planned run will train, from measured seconds per epoch (``--dry-run``).

``epoch_seconds.json`` beside this module holds figures measured by
``benchmarks/bench_study_epochs.py``: seconds per training epoch (and per final evaluation) of
each Table I configuration, and of Table IV's heads on the original and E, at each data size the
study trains at (``synthetic-tiny``, ``synthetic-quick``, ``thumos14``: THUMOS14's shapes, for
the synthetic ``paper`` preset and for real THUMOS14 features), with the machine, the device,
the threads and the commit they were measured at. A run's estimate is the figure times its
epochs (warm-up included) times its training videos over the figure's, plus one evaluation per
evaluated epoch. A run without a figure (another dataset, a device never measured, a head not
timed at that configuration) has no estimate, and says so.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from tal_lab.config import DEFAULTS
from tal_lab.data.synthetic_spec import get_preset
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, RunSpec

__all__ = ["FIGURES_FILE", "Estimate", "epoch_figures", "data_size", "estimate_run", "training_order"]

FIGURES_FILE = Path(__file__).with_name("epoch_seconds.json")
# Plan data tags -> the size their figures were measured at.
_SIZES: dict[str, str] = {"synthetic-tiny": "synthetic-tiny", "synthetic-quick": "synthetic-quick",
                          "synthetic-thumos14": "thumos14", "thumos": "thumos14"}


@dataclass(frozen=True)
class Estimate:
    """A run's expected training time, or why there is none.

    Attributes:
        seconds: the estimate (None: no figure applies).
        basis: what it came from, or the reason there is none.
    """

    seconds: float | None
    basis: str


@functools.lru_cache(maxsize=4)
def epoch_figures(path: Path = FIGURES_FILE) -> dict[str, Any]:
    """The measured table (machine, device, threads, commit and one entry per figure).

    Raises:
        FileNotFoundError: the table is missing (names it).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the study's epoch timings are missing; run "
                                f"benchmarks/bench_study_epochs.py to measure them")
    return json.loads(path.read_text())


def data_size(data_tag: str) -> str | None:
    """The size a plan's data tag was measured at, or None."""
    return _SIZES.get(data_tag)


def _configuration(spec: RunSpec) -> str | None:
    return next((k for k, pair in TABLE1_CONFIGURATIONS.items() if pair == (spec.backbone, spec.neck)), None)


def _warmup_epochs(size: str) -> int:
    """The warm-up epochs a run at ``size`` trains before its ``epochs`` (the preset's, else
    ActionFormer's default)."""
    preset = {"synthetic-tiny": "tiny", "synthetic-quick": "quick"}.get(size, "thumos14")
    opt = {**DEFAULTS["opt"], **get_preset(preset).opt}
    return int(opt["warmup_epochs"]) if opt.get("warmup", True) else 0


def estimate_run(spec: RunSpec, data_tag: str, device: str, train_videos: int | None = None,
                 figures: Mapping[str, Any] | None = None) -> Estimate:
    """The training time of ``spec`` on ``device`` ('cpu' or 'cuda'), from the measured figures.

    Args:
        train_videos: the run's training videos, when they differ from the figure's (scales the
            epoch time); None takes the figure's.
    """
    table = figures if figures is not None else epoch_figures()
    size, configuration = data_size(data_tag), _configuration(spec)
    if size is None:
        return Estimate(None, f"no figure measured for data {data_tag!r}")
    device_kind = "cuda" if device.startswith("cuda") else device
    rows = [f for f in table["figures"] if f["size"] == size and f["configuration"] == configuration
            and f["head"] == spec.head and f["device"] == device_kind]
    if not rows:
        return Estimate(None, f"no figure measured for {configuration or spec.backbone}/{spec.head} at {size} on "
                              f"{device_kind}")
    row = rows[0]
    scale = train_videos / row["train_videos"] if train_videos and row.get("train_videos") else 1.0
    epochs = spec.epochs + _warmup_epochs(size)
    seconds = row["seconds_per_epoch"] * scale * epochs
    evaluations = 1 + len(set(spec.eval_epochs) - {spec.epochs})
    timed_eval = row.get("eval_seconds") is not None
    if timed_eval:
        seconds += row["eval_seconds"] * evaluations
    threads = row.get("threads")
    basis = (f"{row['seconds_per_epoch']:.3g} s/epoch x {epochs} epochs"
             f"{f' + {evaluations} evaluation(s)' if timed_eval else ', evaluation not timed'} ({size}, "
             f"{device_kind}{f', {threads} thread(s)' if threads else ''}; {table.get('machine', '?')})")
    return Estimate(seconds, basis)


def training_order(specs: Sequence[RunSpec], data_tag: str, device: str,
                   figures: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """The order a study starts its runs in: Table I's first (Table IV waits for all of them),
    then the others; within each group the longest estimated run first, so that the last runs
    to start are short ones and no slot idles at the end while one long run finishes. Runs
    without an estimate keep their plan order, after the estimated ones of their group."""
    def key(indexed: tuple[int, RunSpec]) -> tuple[int, float, int]:
        index, spec = indexed
        seconds = estimate_run(spec, data_tag, device, figures=figures).seconds
        table1 = any(use.startswith("I:") for use in spec.uses)
        return (0 if table1 else 1, -seconds if seconds is not None else float("inf"), index)

    return [spec for _, spec in sorted(enumerate(specs), key=key)]
