"""ActionFormer-format annotation JSON: reading, the label map, and per-video records.

The format (ActivityNet's, as ActionFormer uses it)::

    {"database": {video_id: {"subset": "Validation", "duration": 33.83, "fps": 30.0,
                             "annotations": [{"label": "CricketBowling", "segment": [0.2, 1.1],
                                              "label_id": 5}, ...]}, ...}}

Segments are in seconds. The label map comes from the JSON itself, ``label -> label_id`` over
every annotation of every subset, as in ActionFormer's datasets. Parsing never stops at the
first problem: it returns every :class:`~tal_lab.data.errors.Problem` it finds, and callers
decide whether to raise (datasets) or to print them all (``validate``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tal_lab.data.errors import DataError, DataFileNotFoundError, Problem

__all__ = [
    "VideoRecord",
    "ParsedAnnotations",
    "load_database",
    "build_label_map",
    "parse_annotations",
    "drop_duplicate_annotations",
    "OUTSIDE_TOLERANCE_SEC",
    "MISSING_DURATION_SEC",
]

# A segment may overshoot the video by this much before it counts as outside the video:
# THUMOS14 annotations are given to 0.1 s and durations to 0.01 s.
OUTSIDE_TOLERANCE_SEC = 0.1
# ActionFormer's thumos / epic datasets use this duration when the JSON gives none.
MISSING_DURATION_SEC = 1e8
# ActionFormer's remove_duplicate_annotations tolerance (ActivityNet): annotations shorter
# than this, or repeating an earlier one's label and both boundaries within it, are dropped.
DUPLICATE_TOLERANCE_SEC = 1e-3


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split, as the dataset keeps it in memory (features stay on disk).

    Shapes:
        segments_sec: (N, 2) float32 [start, end] in seconds, or None without annotations.
        labels: (N,) int64 label ids, or None without annotations.
    """

    video_id: str
    subset: str
    fps: float
    duration_sec: float
    segments_sec: np.ndarray | None
    labels: np.ndarray | None


@dataclass
class ParsedAnnotations:
    """The videos of the requested splits, the label map and every problem found."""

    videos: list[VideoRecord]
    label_map: dict[str, int]
    problems: list[Problem]
    subsets_present: list[str]


def load_database(json_file: str | Path) -> dict[str, Any]:
    """Read an annotation JSON and return its ``database`` mapping.

    Raises:
        DataFileNotFoundError: the file does not exist.
        DataError: the file is not readable JSON or has no ``database`` mapping.
    """
    path = Path(json_file)
    if not path.is_file():
        raise DataFileNotFoundError(f"{path}: annotation JSON does not exist (dataset.json_file)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: annotation JSON is not readable: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise DataError(f"{path}: annotation JSON has no 'database' mapping (ActionFormer's format)")
    return data["database"]


def build_label_map(
    database: Mapping[str, Any], json_file: str, num_classes: int, exact: bool = True, check_ids: bool = True
) -> tuple[dict[str, int], list[Problem]]:
    """The ``label -> label_id`` map of all annotations, and its problems.

    Args:
        exact: the map must hold exactly ``num_classes`` labels (THUMOS14, ActivityNet); when
            False fewer are allowed (EPIC-Kitchens has classes without any annotation).
        check_ids: check ids against ``num_classes`` (off when every label becomes class 0).
    """
    problems: list[Problem] = []
    label_map: dict[str, int] = {}
    first_seen: dict[str, str] = {}
    for video_id, video in database.items():
        for act in _annotations(video):
            label, label_id = act.get("label"), act.get("label_id")
            if label is None or label_id is None:
                continue  # reported per annotation by parse_annotations
            if isinstance(label_id, bool) or not isinstance(label_id, int):
                problems.append(Problem("error", "label_id", json_file, video_id,
                                        f"label '{label}' has label_id {label_id!r}, not an integer"))
                continue
            if label in label_map and label_map[label] != label_id:
                problems.append(Problem(
                    "error", "label_conflict", json_file, video_id,
                    f"label '{label}' has label_id {label_id} here but {label_map[label]} in video "
                    f"'{first_seen[label]}'"))
                continue
            label_map.setdefault(label, label_id)
            first_seen.setdefault(label, video_id)
    by_id: dict[int, list[str]] = {}
    for label, label_id in label_map.items():
        by_id.setdefault(label_id, []).append(label)
        if check_ids and not 0 <= label_id < num_classes:
            problems.append(Problem(
                "error", "label_range", json_file, first_seen[label],
                f"label '{label}' has label_id {label_id}, outside the label map 0..{num_classes - 1} "
                f"(dataset.num_classes {num_classes})"))
    for label_id, labels in sorted(by_id.items()):
        if len(labels) > 1:
            problems.append(Problem("error", "label_conflict", json_file, None,
                                    f"label_id {label_id} is used by several labels: {sorted(labels)}"))
    if check_ids and ((exact and len(label_map) != num_classes) or len(label_map) > num_classes):
        problems.append(Problem(
            "error", "num_classes", json_file, None,
            f"the label map has {len(label_map)} labels but dataset.num_classes is {num_classes}"))
    return label_map, problems


def drop_duplicate_annotations(acts: Sequence[Mapping[str, Any]], drop_short: bool = True) -> list[Mapping[str, Any]]:
    """ActivityNet clean-up as ActionFormer does it: drop near-empty and repeated annotations.

    Args:
        drop_short: also drop annotations shorter than the tolerance (ActionFormer); TriDet's
            copy of the function (its HACS dataset) only drops repeats.
    """
    kept: list[Mapping[str, Any]] = []
    for act in acts:
        start, end = act["segment"]
        if drop_short and end - start < DUPLICATE_TOLERANCE_SEC:
            continue
        repeated = any(
            abs(start - k["segment"][0]) <= DUPLICATE_TOLERANCE_SEC
            and abs(end - k["segment"][1]) <= DUPLICATE_TOLERANCE_SEC
            and act.get("label_id") == k.get("label_id")
            for k in kept
        )
        if not repeated:
            kept.append(act)
    return kept


def parse_annotations(
    database: Mapping[str, Any],
    json_file: str,
    splits: Iterable[str],
    num_classes: int,
    default_fps: float | None,
    exact_label_map: bool = True,
    drop_duplicates: bool = False,
    single_class: bool = False,
    drop_short: bool = True,
) -> ParsedAnnotations:
    """Records of the videos whose subset is in ``splits`` (case-insensitive), with all problems.

    Args:
        default_fps: when set, overrides every video's fps (ActionFormer's dataset.default_fps).
        drop_duplicates: apply :func:`drop_duplicate_annotations` (ActivityNet, HACS).
        single_class: every label becomes 0 (ActivityNet / HACS with num_classes 1: proposals).
        drop_short: with ``drop_duplicates``, also drop near-empty annotations (not for HACS).
    """
    wanted = {s.lower() for s in splits}
    label_map, problems = build_label_map(database, json_file, num_classes, exact_label_map,
                                          check_ids=not single_class)
    videos: list[VideoRecord] = []
    subsets: set[str] = set()
    for video_id, video in database.items():
        if not isinstance(video, Mapping) or not isinstance(video.get("subset"), str):
            problems.append(Problem("error", "video_entry", json_file, str(video_id),
                                    "entry is not a mapping with a 'subset' string"))
            continue
        subsets.add(video["subset"])
        if video["subset"].lower() not in wanted:
            continue
        record = _parse_video(str(video_id), video, json_file, label_map, default_fps,
                              drop_duplicates, drop_short, single_class, problems)
        if record is not None:
            videos.append(record)
    return ParsedAnnotations(videos, label_map, problems, sorted(subsets))


def _annotations(video: Any) -> list[Mapping[str, Any]]:
    if not isinstance(video, Mapping):
        return []
    acts = video.get("annotations") or []
    return [a for a in acts if isinstance(a, Mapping)] if isinstance(acts, list) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _parse_video(
    video_id: str,
    video: Mapping[str, Any],
    json_file: str,
    label_map: Mapping[str, int],
    default_fps: float | None,
    drop_duplicates: bool,
    drop_short: bool,
    single_class: bool,
    problems: list[Problem],
) -> VideoRecord | None:
    """One video's record, or None when an annotation cannot be loaded (reported in ``problems``)."""
    def report(code: str, message: str, severity: str = "error") -> None:
        problems.append(Problem(severity, code, json_file, video_id, message))  # type: ignore[arg-type]

    if default_fps is not None:
        fps = float(default_fps)
    else:
        fps_value = _number(video.get("fps"))
        if fps_value is None or fps_value <= 0:
            report("fps", f"has no valid fps ({video.get('fps')!r}) and dataset.default_fps is null")
            return None
        fps = fps_value
    if "duration" in video:
        duration = _number(video["duration"])
        if duration is None or duration <= 0:
            report("duration", f"duration {video['duration']!r} is not a positive number")
            return None
    else:
        duration = MISSING_DURATION_SEC

    acts = video.get("annotations") or []
    if not isinstance(acts, list):
        report("annotations", "'annotations' is not a list")
        return None
    ok = True
    for index, act in enumerate(acts):
        ok &= _check_annotation(index, act, duration, label_map, report)
    if not ok:
        return None
    if drop_duplicates:
        acts = drop_duplicate_annotations(acts, drop_short=drop_short)
    if not acts:
        return VideoRecord(video_id, video["subset"], fps, duration, None, None)
    segments = np.asarray([a["segment"] for a in acts], dtype=np.float32).reshape(-1, 2)
    if single_class:
        labels = np.zeros(len(acts), dtype=np.int64)
    else:
        labels = np.asarray([label_map[a["label"]] for a in acts], dtype=np.int64)
    return VideoRecord(video_id, video["subset"], fps, duration, segments, labels)


def _check_annotation(index: int, act: Any, duration: float, label_map: Mapping[str, int], report: Any) -> bool:
    """Report the problems of one annotation; False when it cannot be loaded."""
    where = f"annotation {index}"
    if not isinstance(act, Mapping):
        report("annotation", f"{where} is not a mapping")
        return False
    segment = act.get("segment")
    bounds = [_number(v) for v in segment] if isinstance(segment, (list, tuple)) else []
    if len(bounds) != 2 or None in bounds:
        report("segment", f"{where} has segment {segment!r}, not two finite numbers [start, end] in seconds")
        return False
    start, end = bounds
    label = act.get("label")
    if label is None:
        report("label", f"{where} has no 'label'")
        return False
    if label not in label_map:
        report("label_missing", f"{where}: label '{label}' is absent from the label map "
                                f"(no annotation gives it a valid label_id)")
        return False
    if end < start:
        report("segment_order", f"{where} ('{label}'): segment [{start}, {end}] s ends before it starts")
        return False
    if end == start:
        report("segment_empty", f"{where} ('{label}'): segment [{start}, {end}] s has zero length "
                                "(it can never be detected)", "warning")
    if start < -OUTSIDE_TOLERANCE_SEC or end > duration + OUTSIDE_TOLERANCE_SEC:
        report("segment_outside", f"{where} ('{label}'): segment [{start}, {end}] s lies outside the "
                                  f"video [0, {duration}] s", "warning")
    return True
