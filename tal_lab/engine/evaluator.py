"""Evaluation: run the detector over a split, save its detections, score them with mAP.

As ActionFormer's ``valid_one_epoch`` + ``ANETdetection``: the detector in eval mode returns,
per video, segments in seconds, scores and labels; all of them form one predictions frame
(``video-id, t-start, t-end, label, score``), optionally fused with external video-level
classification scores (:func:`fuse_external_scores`, ActionFormer's ActivityNet recipe), then
scored by :func:`tal_lab.evaluation.mean_average_precision` against the ground truth the official
evaluator reads from the annotation JSON.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from tal_lab.core.autocast import autocast
from tal_lab.evaluation import (class_agnostic, detections_to_frame, mean_average_precision, official_label_space,
                                read_ground_truth_json)

__all__ = [
    "PRED_COLUMNS",
    "EvalResult",
    "tiou_thresholds_for",
    "ground_truth_for",
    "videos_to_device",
    "run_inference",
    "load_external_scores",
    "fuse_external_scores",
    "score_detections",
    "agnostic_ground_truth",
]

log = logging.getLogger(__name__)

PRED_COLUMNS = ["video-id", "t-start", "t-end", "label", "score"]

# ActionFormer's postprocess_results defaults: detections kept per video, external classes used.
FUSION_NUM_PRED = 200
FUSION_TOPK = 2

# Evaluation thresholds of each dataset (ActionFormer's dataset attributes).
_TIOUS = {
    "thumos": np.linspace(0.3, 0.7, 5),
    "synthetic": np.linspace(0.3, 0.7, 5),
    "anet": np.linspace(0.5, 0.95, 10),
    "epic": np.linspace(0.1, 0.5, 5),
    "ego4d": np.linspace(0.1, 0.5, 5),
    "hacs": np.linspace(0.5, 0.95, 10),
}


@dataclass
class EvalResult:
    """One evaluation: mAP (fractions) per tIoU threshold, their average, and what produced them.

    Attributes:
        tiou_thresholds: thresholds, ascending.
        mAP: mAP per threshold, fractions in [0, 1].
        average_mAP: mean of ``mAP``.
        per_class_ap: {label id: [AP per threshold]} (NaN for classes without ground truth).
        detections: the scored predictions frame (after fusion when used).
        weights: 'ema' or 'model'.
        checkpoint_epoch: epochs completed by the evaluated weights (None: not from a run).
        seconds: wall time of inference plus scoring; ``num_videos`` videos.
    """

    tiou_thresholds: list[float]
    mAP: list[float]  # noqa: N815 - the name every TAL paper uses
    average_mAP: float  # noqa: N815
    per_class_ap: dict[int, list[float]]
    detections: pd.DataFrame
    weights: str
    checkpoint_epoch: int | None = None
    seconds: float = 0.0
    inference_seconds: float = 0.0
    num_videos: int = 0
    fused_with: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_video(self) -> float:
        return self.inference_seconds / max(self.num_videos, 1)

    def summary(self) -> dict[str, Any]:
        """JSON-ready record (no detections): thresholds, mAP, average, per-class AP, timing."""
        return {
            "tiou_thresholds": self.tiou_thresholds, "mAP": self.mAP, "average_mAP": self.average_mAP,
            "per_class_AP": {str(k): v for k, v in self.per_class_ap.items()}, "weights": self.weights,
            "checkpoint_epoch": self.checkpoint_epoch, "num_videos": self.num_videos,
            "num_detections": int(len(self.detections)), "fused_with": self.fused_with,
            "seconds": self.seconds, "seconds_per_video": self.seconds_per_video,
        }

    def table(self) -> pd.DataFrame:
        """mAP in percent, one column per threshold plus 'avg' (for printing)."""
        data = {f"mAP@{t:g}": [100.0 * m] for t, m in zip(self.tiou_thresholds, self.mAP)}
        data["avg"] = [100.0 * self.average_mAP]
        return pd.DataFrame(data)


def tiou_thresholds_for(cfg: Mapping[str, Any], dataset: Any = None) -> list[float]:
    """The dataset's evaluation thresholds (its ``tiou_thresholds`` attribute, else by name).

    The values are kept exactly as ``np.linspace`` makes them (0.4 is 0.39999999999999997), as the
    official evaluator uses them; rounding would flip matches whose tIoU lies at a threshold.
    Column names round them for display (``mAP@0.4``).
    """
    values = getattr(dataset, "tiou_thresholds", None)
    if values is None:
        values = _TIOUS.get(cfg["dataset_name"], _TIOUS["thumos"])
    return [float(t) for t in values]


def ground_truth_for(cfg: Mapping[str, Any], dataset: Any) -> pd.DataFrame:
    """Ground truth of the evaluated split, as the official evaluator reads it.

    From the annotation JSON (``dataset.json_file`` or ``dataset.json_file`` of the config)
    and every subset of ``val_split``, with the evaluator's duplicate filter
    (:func:`tal_lab.evaluation.read_ground_truth_json`); datasets without a JSON file provide
    ``ground_truth_frame()``.
    """
    json_file = getattr(dataset, "json_file", None) or cfg["dataset"]["json_file"]
    if json_file and Path(str(json_file)).is_file():
        frames = [read_ground_truth_json(json_file, subset=s) for s in cfg["val_split"]]
        return pd.concat(frames, ignore_index=True)
    if hasattr(dataset, "ground_truth_frame"):
        return dataset.ground_truth_frame()
    raise ValueError("cannot find the ground truth of the evaluation split: the dataset has no "
                     "annotation file (dataset.json_file) and no ground_truth_frame()")


def videos_to_device(videos: Sequence[Mapping[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    """Copies of the video dicts with their tensors on ``device`` (no copy on the CPU)."""
    if device.type == "cpu":
        return [dict(v) for v in videos]
    return [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in video.items()}
            for video in videos]


@torch.no_grad()
def run_inference(
    model: nn.Module,
    batches: Iterable[Sequence[Mapping[str, Any]]],
    device: torch.device,
    amp: str = "none",
    progress: bool = False,
    total: int | None = None,
) -> tuple[pd.DataFrame, int, float]:
    """Detections of ``model`` (eval mode) over ``batches`` of video dicts.

    Returns:
        (detections frame with PRED_COLUMNS, number of videos, seconds).
    """
    was_training = model.training
    model.eval()
    outputs: list[Mapping[str, Any]] = []
    start = time.perf_counter()
    try:
        for videos in tqdm(batches, total=total, desc="eval", disable=not progress, leave=False):
            with autocast(device, amp):
                dets = model(videos_to_device(videos, device))
            outputs += [{k: (v.float().cpu() if torch.is_tensor(v) else v) for k, v in d.items()} for d in dets]
    finally:
        model.train(was_training)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    frame = detections_to_frame(outputs) if outputs else pd.DataFrame({c: [] for c in PRED_COLUMNS})
    frame["label"] = frame["label"].astype(np.int64)
    return frame[PRED_COLUMNS], len(outputs), seconds


def load_external_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Video-level classification scores from a JSON file: ``{video: [score per class]}``.

    ActionFormer's ActivityNet files wrap them as ``{"results": {...}}``; both forms load.
    Pickle files are refused: opening one can run code; convert it to JSON once.

    Raises:
        FileNotFoundError / ValueError: naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"test_cfg.ext_score_file: {path} does not exist")
    if path.suffix != ".json":
        raise ValueError(f"test_cfg.ext_score_file: {path} is not JSON; tal_lab reads external scores from "
                         "JSON only (convert a pickle with: json.dump(pickle.load(f), out))")
    data = json.loads(path.read_text())
    data = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping video id -> list of class scores")
    return {str(video): np.asarray(scores, dtype=np.float64) for video, scores in data.items()}


def fuse_external_scores(
    detections: pd.DataFrame,
    class_scores: Mapping[str, np.ndarray],
    num_pred: int = FUSION_NUM_PRED,
    topk: int = FUSION_TOPK,
) -> pd.DataFrame:
    """ActionFormer's fusion with external classification scores (its ActivityNet results).

    Per video: keep the ``num_pred`` best detections (class-agnostic), take the ``topk``
    classes of the external scores, and emit every kept segment once per such class with score
    ``sqrt(class score * detection score)`` and that class as label.

    Raises:
        ValueError: a detected video has no external scores.
    """
    rows = []
    for video, group in detections.groupby("video-id", sort=True):
        if video not in class_scores:
            raise ValueError(f"external classification scores lack video {video!r}")
        order = np.argsort(-group["score"].to_numpy(), kind="stable")[:num_pred]
        kept = group.iloc[order]
        cls = class_scores[video]
        top = np.argsort(-cls, kind="stable")[:topk]
        for label in top:
            rows.append(pd.DataFrame({
                "video-id": video, "t-start": kept["t-start"].to_numpy(), "t-end": kept["t-end"].to_numpy(),
                "label": int(label), "score": np.sqrt(cls[label] * kept["score"].to_numpy()),
            }))
    if not rows:
        return detections.iloc[:0][PRED_COLUMNS]
    return pd.concat(rows, ignore_index=True)[PRED_COLUMNS]


def agnostic_ground_truth(cfg: Mapping[str, Any], ground_truth: pd.DataFrame) -> pd.DataFrame:
    """The ground truth a detector with ``num_classes: 1`` is scored against: every label 0
    (proposals), unless external classification scores (``test_cfg.ext_score_file``) give the
    detections their classes; other detectors keep the ground truth as it is.

    ActionFormer's evaluator would score the label-0 detections against the first of the
    ground truth's renumbered classes and average over all of them (a meaningless number);
    tal_lab scores the proposals, class-agnostic (docs/evaluation.md).
    """
    if int(cfg["dataset"]["num_classes"]) != 1 or cfg["test_cfg"]["ext_score_file"]:
        return ground_truth
    log.info("num_classes 1 without test_cfg.ext_score_file: scoring class-agnostic proposals "
             "(every ground-truth label counts as 0)")
    return class_agnostic(ground_truth)


def score_detections(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    tiou_thresholds: Sequence[float],
    num_classes: int,
    label_space: str = "corrected",
) -> tuple[list[float], float, dict[int, list[float]]]:
    """mAP per threshold (fractions), their average and per-class AP by class id.

    ``label_space`` (``dataset.eval_label_space``): 'corrected' scores label ids 0..C-1, and
    classes without ground truth get AP NaN and stay out of the mean; 'official' relabels as
    ActionFormer's evaluator (:func:`tal_lab.evaluation.official_label_space`), which
    reproduces its numbers where a class has no ground truth (EPIC-Kitchens).
    """
    if label_space == "official":
        relabelled = official_label_space(ground_truth, detections)
        result = mean_average_precision(relabelled.ground_truth, relabelled.predictions, tiou_thresholds,
                                        labels=list(range(len(relabelled.original))))
        ids = relabelled.original
    elif label_space == "corrected":
        result = mean_average_precision(ground_truth, detections, tiou_thresholds, labels=list(range(num_classes)))
        ids = list(result.labels)
    else:
        raise ValueError(f"label_space must be 'corrected' or 'official', got {label_space!r}")
    per_class = {int(ids[i]): [float(a) for a in result.ap_per_class[:, i]] for i in range(len(ids))}
    return [float(m) for m in result.mAP], float(result.average_mAP), per_class
