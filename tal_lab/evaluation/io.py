"""Reading and writing the frames the evaluation scores: annotation JSONs, prediction files.

Ground truth comes from ActionFormer's annotation JSON, loaded as its evaluator does (subset
filter, instances shorter than 1e-3 s and duplicates dropped); predictions from .csv, .pkl
(ActionFormer's ``eval_results.pkl``) or .json files, or from what the detector returns
(:func:`detections_to_frame`). Everything here is exported by :mod:`tal_lab.evaluation`.

Frames have columns ``video-id, t-start, t-end, label`` (+ ``score`` for predictions), times in
seconds, labels either ids (ints) or names (str).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "GT_COLUMNS",
    "PRED_COLUMNS",
    "read_ground_truth_json",
    "read_video_info_json",
    "read_class_names",
    "read_predictions",
    "detections_to_frame",
]

GT_COLUMNS = ("video-id", "t-start", "t-end", "label")
PRED_COLUMNS = GT_COLUMNS + ("score",)
DUPLICATE_TOL_SEC = 1e-3  # reference remove_duplicate_annotations: same label, |ds|, |de| <= tol


def _annotation_label(event: Mapping[str, Any], label_field: str, video: str) -> Any:
    value = event.get(label_field)
    if value is None or isinstance(value, (list, tuple)):
        raise ValueError(f"{video}: annotation {event} has no scalar '{label_field}'")
    return int(value) if label_field == "label_id" else value


def read_ground_truth_json(
    path: str | Path, subset: str | None = "test", label_field: str = "label_id"
) -> pd.DataFrame:
    """GT of an ActionFormer annotation JSON, as the reference evaluator loads it.

    Keeps videos whose ``subset`` equals ``subset`` (case-insensitive; None: all), and within
    a video drops instances shorter than 1e-3 s and duplicates (same label, both ends within
    1e-3 s of a kept instance), like the reference's ``remove_duplicate_annotations``.

    Returns:
        DataFrame video-id, t-start, t-end, label (``label_field``: 'label_id' or 'label').
    """
    with open(path, encoding="utf8") as f:
        database = json.load(f).get("database")
    if not isinstance(database, dict):
        raise ValueError(f"{path}: no 'database' mapping (not an ActionFormer annotation file)")
    rows: list[tuple[str, float, float, Any]] = []
    for video, info in database.items():
        if subset is not None and str(info.get("subset", "")).lower() != subset.lower():
            continue
        kept: list[tuple[float, float, Any]] = []
        for event in info.get("annotations", []):
            start, end = (float(x) for x in event["segment"])
            label = _annotation_label(event, label_field, video)
            too_short = end - start < DUPLICATE_TOL_SEC
            duplicate = any(abs(start - s) <= DUPLICATE_TOL_SEC and abs(end - e) <= DUPLICATE_TOL_SEC and label == lab
                            for s, e, lab in kept)
            if not (too_short or duplicate):
                kept.append((start, end, label))
        rows += [(video, s, e, lab) for s, e, lab in kept]
    if not rows:
        raise ValueError(f"{path}: no annotations in subset {subset!r}")
    return pd.DataFrame(rows, columns=list(GT_COLUMNS))


def read_video_info_json(path: str | Path, subset: str | None = "test") -> pd.DataFrame:
    """Per-video duration (s) and fps of an ActionFormer annotation JSON, indexed by video-id."""
    with open(path, encoding="utf8") as f:
        database = json.load(f)["database"]
    rows = [(video, float(info["duration"]), float(info.get("fps", np.nan)))
            for video, info in database.items()
            if subset is None or str(info.get("subset", "")).lower() == subset.lower()]
    return pd.DataFrame(rows, columns=["video-id", "duration", "fps"]).set_index("video-id")


def read_class_names(path: str | Path) -> list[str]:
    """Class names indexed by label_id, from an ActionFormer annotation JSON."""
    with open(path, encoding="utf8") as f:
        database = json.load(f)["database"]
    names: dict[int, str] = {}
    for video, info in database.items():
        for event in info.get("annotations", []):
            label_id, name = int(event["label_id"]), str(event["label"])
            if names.setdefault(label_id, name) != name:
                raise ValueError(f"{path}: label_id {label_id} is both {names[label_id]!r} and {name!r} ({video})")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: label ids {sorted(names)} are not 0..{len(names) - 1}")
    return [names[i] for i in range(len(names))]


def _to_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def detections_to_frame(detections: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> pd.DataFrame:
    """Predictions frame from what the detector returns.

    Accepts a list of per-video dicts (``video_id``, ``segments`` or ``segments_sec`` (N, 2) in
    seconds, ``scores`` (N,), ``labels`` (N,); tensors or arrays), or one dict of columns
    (``video-id``, ``t-start``, ``t-end``, ``label``, ``score``: ActionFormer's eval_results.pkl).
    """
    if isinstance(detections, Mapping):
        missing = [c for c in PRED_COLUMNS if c not in detections]
        if missing:
            raise ValueError(f"detections: column dict lacks {missing}")
        return pd.DataFrame({c: _to_numpy(detections[c]).tolist() if c != "video-id" else list(detections[c])
                             for c in PRED_COLUMNS})
    frames = []
    for i, det in enumerate(detections):
        video = det.get("video_id", det.get("video-id"))
        segments = det.get("segments_sec", det.get("segments"))
        if video is None or segments is None or "scores" not in det or "labels" not in det:
            raise ValueError(f"detections[{i}]: needs video_id, segments (seconds), scores and labels; has {list(det)}")
        seg = _to_numpy(segments).astype(np.float64).reshape(-1, 2)
        frames.append(pd.DataFrame({
            "video-id": [video] * len(seg), "t-start": seg[:, 0], "t-end": seg[:, 1],
            "label": _to_numpy(det["labels"]).astype(np.int64).reshape(-1),
            "score": _to_numpy(det["scores"]).astype(np.float64).reshape(-1),
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if c.startswith("t-") or c == "score" else object)
                             for c in PRED_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read predictions from .csv (exact float parsing), .pkl (column dict) or .json.

    JSON: ActivityNet style ``{"results": {video: [{"segment", "label", "score"}]}}`` or
    ActionFormer style ``{"database": {video: [{"segment", "label_id", "scores"}]}}``.
    """
    path = Path(path)
    if path.suffix == ".csv":
        # pandas 3 parses floats exactly by default (and deprecates the option); pandas 2 needs it
        exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
        return pd.read_csv(path, **exact)
    if path.suffix in (".pkl", ".pickle"):
        with open(path, "rb") as f:
            return detections_to_frame(pickle.load(f))
    if path.suffix == ".json":
        with open(path, encoding="utf8") as f:
            data = json.load(f)
        per_video = data.get("results", data.get("database"))
        if not isinstance(per_video, dict):
            raise ValueError(f"{path}: expected a 'results' or 'database' mapping of video -> detections")
        rows = [(video, float(d["segment"][0]), float(d["segment"][1]), d.get("label_id", d.get("label")),
                 float(d.get("score", d.get("scores"))))
                for video, dets in per_video.items() for d in dets]
        return pd.DataFrame(rows, columns=list(PRED_COLUMNS))
    raise ValueError(f"{path}: unsupported predictions format {path.suffix!r} (csv, pkl, json)")
