"""Detection metrics: ActivityNet / THUMOS14 mAP, per-class AP and recall, vectorised.

The numbers are those of ActionFormer's evaluator (``libs/utils/metrics.py``, ``ANETdetection``,
commit 61ea7eb): per class, predictions ranked by score claim, one by one, the unmatched ground
truth (GT) instance of the same video with the highest tIoU; a claim fails when that tIoU is
strictly below the threshold; AP is the VOC-2011 interpolated area under precision-recall.
The reference loops in Python over every prediction (10-20 s on THUMOS14); here the greedy
matching runs for all classes, videos and thresholds at once (see :func:`match_predictions`).

Rules that the reference leaves to chance or gets wrong are fixed here (docs/evaluation.md):

* ties in score are ranked in row order of the predictions frame (a stable descending sort);
  the reference uses numpy's unstable argsort, whose order changes between numpy versions;
* among GT instances with exactly equal tIoU the later GT row is tried first (what the
  reference's reversed argsort does on the small arrays it sees);
* a prediction label outside the label space is a ``ValueError`` (the reference silently
  re-indexes or drops it); classes of the label space without GT get AP NaN and are left out
  of the mean, as the reference, whose label space is the GT's, leaves them out;
* predictions for videos absent from the GT are false positives (as in the reference), unless
  ``unknown_videos`` says otherwise.

Frames have columns ``video-id, t-start, t-end, label`` (+ ``score`` for predictions), times in
seconds, labels either ids (ints) or names (str) on both sides. Reading them from annotation and
prediction files: :mod:`tal_lab.evaluation.io` (its readers are re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

# re-exported: callers import the readers from tal_lab.evaluation.metrics
from tal_lab.evaluation.io import (
    GT_COLUMNS,
    PRED_COLUMNS,
    detections_to_frame,
    read_class_names,
    read_ground_truth_json,
    read_predictions,
    read_video_info_json,
)

__all__ = [
    "THUMOS14_TIOU_THRESHOLDS",
    "ACTIVITYNET_TIOU_THRESHOLDS",
    "RECALL_TOP_KX",
    "RECALL_AT_K",
    "Segments",
    "Matching",
    "MAPResult",
    "encode_inputs",
    "candidate_pairs",
    "match_predictions",
    "interpolated_average_precision",
    "average_precision_per_class",
    "topkx_recall_per_class",
    "mean_average_precision",
    "recall_at_k",
    "read_ground_truth_json",
    "read_video_info_json",
    "read_class_names",
    "read_predictions",
    "detections_to_frame",
]

# ActionFormer's THUMOS14 dataset setting (np.linspace(0.3, 0.7, 5)); ActivityNet's 0.5:0.05:0.95.
THUMOS14_TIOU_THRESHOLDS = np.linspace(0.3, 0.7, 5)
ACTIVITYNET_TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_TOP_KX = (1, 5)  # the reference evaluator's Recall@1x / Recall@5x
RECALL_AT_K = (1, 5, 10, 50, 100)  # predictions kept per video for recall_at_k
UnknownVideos = Literal["false_positive", "ignore", "error"]


@dataclass(frozen=True)
class Segments:
    """Encoded segments: integer video / label codes and float64 times, one entry per row kept."""

    video: np.ndarray  # (N,) int64 codes into Matching.video_ids
    label: np.ndarray  # (N,) int64 codes into the label space
    start_sec: np.ndarray  # (N,) float64
    end_sec: np.ndarray  # (N,) float64
    row: np.ndarray  # (N,) positions in the input frame
    score: np.ndarray | None = None  # (N,) float64, predictions only

    def __len__(self) -> int:
        return len(self.row)


def _check_frame(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; have {list(frame.columns)}")
    numeric = ("t-start", "t-end", "score") if "score" in columns else ("t-start", "t-end")
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = frame.index[~np.isfinite(values)][:5].tolist()
            raise ValueError(f"{what}: column '{col}' has missing or non-finite values (rows {bad})")
    if frame["label"].isna().any():
        raise ValueError(f"{what}: column 'label' has missing values")


def _label_kind(values: pd.Series, what: str) -> str:
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(f"{what}: labels must be ids (int) or names (str), got bool")
    if pd.api.types.is_integer_dtype(values):
        return "id"
    if pd.api.types.is_float_dtype(values):
        if (values % 1 == 0).all():
            return "id"
        raise ValueError(f"{what}: label ids must be integers, got non-integral floats")
    if all(isinstance(v, str) for v in values):
        return "name"
    if all(isinstance(v, (int, np.integer)) for v in values):
        return "id"
    raise ValueError(f"{what}: labels must be all ids (int) or all names (str)")


def _normalise_labels(values: pd.Series, kind: str) -> np.ndarray:
    return values.to_numpy(dtype=np.int64) if kind == "id" else values.to_numpy(dtype=object)


def encode_inputs(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    labels: Sequence[Any] | None = None,
    unknown_videos: UnknownVideos = "false_positive",
) -> tuple[Segments, Segments, tuple[Any, ...], np.ndarray]:
    """Validate both frames and encode videos and labels as integer codes.

    The label space is ``labels`` when given, else the sorted GT labels (the reference's).
    Video codes ``0..V_gt-1`` are the GT videos in order of appearance; videos found only in
    predictions follow (kept as false positives), or are dropped / rejected per
    ``unknown_videos``.

    Returns:
        (gt, predictions, label space, video ids indexed by code).

    Raises:
        ValueError: a missing column, non-finite time or score, a GT segment that is not longer
            than zero, a prediction ending before it starts, labels of different kinds, or a
            label outside the label space.
    """
    if unknown_videos not in ("false_positive", "ignore", "error"):
        raise ValueError(f"unknown_videos must be 'false_positive', 'ignore' or 'error', got {unknown_videos!r}")
    _check_frame(ground_truth, GT_COLUMNS, "ground truth")
    _check_frame(predictions, PRED_COLUMNS, "predictions")
    if len(ground_truth) == 0:
        raise ValueError("ground truth is empty: AP is undefined without GT instances")
    gt_kind = _label_kind(ground_truth["label"], "ground truth")
    gt_labels = _normalise_labels(ground_truth["label"], gt_kind)
    if labels is None:
        space = tuple(sorted(pd.unique(gt_labels).tolist()))
    else:
        space = tuple(labels)
        if len(set(space)) != len(space):
            raise ValueError("labels: the label space has duplicates")
        space_kind = _label_kind(pd.Series(list(space)), "labels")
        if space_kind != gt_kind:
            raise ValueError(f"labels are {space_kind}s but ground-truth labels are {gt_kind}s")
    index = pd.Index(space)
    gt_code = index.get_indexer(gt_labels)
    if (gt_code < 0).any():
        raise ValueError(f"ground-truth labels {sorted(set(gt_labels[gt_code < 0].tolist()))[:10]} not in labels")
    pred_code = np.zeros(0, dtype=np.int64)
    if len(predictions):
        pred_kind = _label_kind(predictions["label"], "predictions")
        if pred_kind != gt_kind:
            raise ValueError(
                f"label spaces differ: prediction labels are {pred_kind}s, ground-truth labels are "
                f"{gt_kind}s; map one onto the other (read_class_names gives id -> name)"
            )
        pred_labels = _normalise_labels(predictions["label"], pred_kind)
        pred_code = index.get_indexer(pred_labels)
        if (pred_code < 0).any():
            unknown = sorted(set(pred_labels[pred_code < 0].tolist()))
            raise ValueError(
                f"prediction labels {unknown[:10]} are not in the label space {list(space)[:25]}"
                " (pass labels=... to declare classes without ground truth)"
            )
    gt_start = ground_truth["t-start"].to_numpy(dtype=np.float64)
    gt_end = ground_truth["t-end"].to_numpy(dtype=np.float64)
    if (gt_end <= gt_start).any():
        row = int(np.flatnonzero(gt_end <= gt_start)[0])
        raise ValueError(
            f"ground truth row {row}: segment [{gt_start[row]}, {gt_end[row]}] is not longer than 0 "
            "(the reference's JSON loader drops such instances; read_ground_truth_json does too)"
        )
    p_start = predictions["t-start"].to_numpy(dtype=np.float64)
    p_end = predictions["t-end"].to_numpy(dtype=np.float64)
    if (p_end < p_start).any():
        row = int(np.flatnonzero(p_end < p_start)[0])
        raise ValueError(f"prediction row {row}: t-end {p_end[row]} < t-start {p_start[row]}")
    gt_vid = ground_truth["video-id"].to_numpy(dtype=object)
    pred_vid = predictions["video-id"].to_numpy(dtype=object)
    codes, video_ids = pd.factorize(np.concatenate([gt_vid, pred_vid]))
    n_gt_videos = int(codes[: len(gt_vid)].max()) + 1  # factorize numbers in order of appearance
    pred_video = codes[len(gt_vid):].astype(np.int64)
    keep = np.ones(len(predictions), dtype=bool)
    if (pred_video >= n_gt_videos).any():
        if unknown_videos == "error":
            extra = sorted(set(video_ids[n_gt_videos:].tolist()))
            raise ValueError(f"predictions for videos absent from the ground truth: {extra[:10]}")
        if unknown_videos == "ignore":
            keep = pred_video < n_gt_videos
            video_ids = video_ids[:n_gt_videos]
    gt = Segments(codes[: len(gt_vid)].astype(np.int64), gt_code.astype(np.int64), gt_start, gt_end,
                  np.arange(len(gt_vid)))
    score = predictions["score"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(keep)
    pred = Segments(pred_video[rows], pred_code[rows].astype(np.int64), p_start[rows], p_end[rows], rows, score[rows])
    return gt, pred, space, np.asarray(video_ids, dtype=object)


def _first_at_least(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per query, the first index i in [lo, hi) with values[i] >= x (hi if none); values sorted in each range."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        below = values[np.minimum(mid, len(values) - 1)] < x
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def candidate_pairs(
    gt_key: np.ndarray, gt: Segments, pred_key: np.ndarray, pred: Segments, min_tiou: float,
    pred_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (prediction, GT) pairs with equal keys and tIoU >= ``min_tiou``, with their tIoU.

    tIoU uses the reference's float64 arithmetic in its order: the clipped intersection divided
    by (GT length + prediction length - intersection). ``pred_index`` restricts the search to
    those predictions (``pred_key`` then has their keys).

    Only GTs whose start can reach the threshold are visited: tIoU >= t > 0 implies
    ps + t*pl - pl/t <= gs <= pe - t*pl (p: prediction, g: GT, l: length), widened by a margin
    far above rounding error; the exact test decides.

    Shapes:
        gt_key: (G,) int; pred_key: (N',) int. Returns pred index (P,), gt index (P,), tIoU (P,).
    """
    pred_index = np.arange(len(pred_key)) if pred_index is None else np.asarray(pred_index)
    gt_order = np.lexsort((gt.start_sec, gt_key))  # by key, then start
    sorted_key, sorted_start = gt_key[gt_order], gt.start_sec[gt_order]
    lo = np.searchsorted(sorted_key, pred_key, side="left")
    hi = np.searchsorted(sorted_key, pred_key, side="right")
    if min_tiou > 0 and len(pred_index):
        p_s, p_e = pred.start_sec[pred_index], pred.end_sec[pred_index]
        p_len = p_e - p_s
        margin = 1e-9 * (np.abs(p_s) + np.abs(p_e) + 1.0) / min_tiou
        lo, hi = (_first_at_least(sorted_start, lo, hi, p_s + min_tiou * p_len - p_len / min_tiou - margin),
                  _first_at_least(sorted_start, lo, hi, np.nextafter(p_e - min_tiou * p_len + margin, np.inf)))
    count = hi - lo
    pair_pred = np.repeat(pred_index, count)
    first = np.cumsum(count) - count  # where each prediction's run of pairs starts
    pair_gt = gt_order[np.arange(len(pair_pred)) - np.repeat(first - lo, count)]
    p_s, p_e = pred.start_sec[pair_pred], pred.end_sec[pair_pred]
    g_s, g_e = gt.start_sec[pair_gt], gt.end_sec[pair_gt]
    inter = (np.minimum(p_e, g_e) - np.maximum(p_s, g_s)).clip(0)
    tiou = inter / ((g_e - g_s) + (p_e - p_s) - inter)
    keep = tiou >= min_tiou
    return pair_pred[keep], pair_gt[keep], tiou[keep]


def rank_order(label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Prediction indices sorted by label, then score descending, ties in row order (stable)."""
    return np.lexsort((np.arange(len(score)), -score, label))


def _greedy_match(
    pair_pred: np.ndarray, pair_gt: np.ndarray, pair_tiou: np.ndarray,
    thresholds: np.ndarray, precedence: np.ndarray, n_pred: int, n_gt: int,
) -> np.ndarray:
    """The reference's sequential greedy matching, resolved in parallel rounds.

    Each prediction, in precedence order, takes its best free GT (highest tIoU, then later GT
    row) with tIoU >= threshold. In a round every undecided prediction looks at its best free
    GT; it may take it now when no earlier undecided prediction still has that GT among its
    free candidates: earlier predictions can only lock GTs they list, so nothing can change the
    outcome. The earliest undecided prediction of each (threshold, video, class) always
    qualifies, so every round makes progress; in practice a handful of rounds suffice.

    Shapes:
        pair_*: (P,); thresholds: (T,); precedence: (N,) unique ranks. Returns (T, N) GT index or -1.
    """
    pref = np.lexsort((-pair_gt, -pair_tiou, pair_pred))  # per prediction, best candidate first
    pair_pred, pair_gt, pair_tiou = pair_pred[pref], pair_gt[pref], pair_tiou[pref]
    # One matching problem per threshold; row-major nonzero keeps each prediction's run in order.
    t_idx, k = np.nonzero(pair_tiou[None, :] >= thresholds[:, None])
    slot_pred = t_idx * n_pred + pair_pred[k]
    slot_gt = t_idx * n_gt + pair_gt[k]
    prec = precedence[pair_pred[k]]
    matched = np.full(len(thresholds) * n_pred, -1, dtype=np.int64)
    locked = np.zeros(len(thresholds) * n_gt, dtype=bool)
    done = np.zeros(len(thresholds) * n_pred, dtype=bool)
    first_claim = np.empty(len(thresholds) * n_gt, dtype=np.int64)
    while len(slot_pred):
        head = np.r_[True, slot_pred[1:] != slot_pred[:-1]]  # each prediction's best free GT
        first_claim[slot_gt] = np.iinfo(np.int64).max
        np.minimum.at(first_claim, slot_gt, prec)
        win = head.copy()
        win[head] = first_claim[slot_gt[head]] == prec[head]
        matched[slot_pred[win]] = slot_gt[win] % n_gt
        locked[slot_gt[win]] = True
        done[slot_pred[win]] = True
        live = ~(done[slot_pred] | locked[slot_gt])
        slot_pred, slot_gt, prec = slot_pred[live], slot_gt[live], prec[live]
    return matched.reshape(len(thresholds), n_pred)


@dataclass(frozen=True)
class Matching:
    """Per-prediction matching results, reusable by AP, recall, DETAD and the bootstrap.

    ``order`` ranks predictions by (class, score desc, row); ``class_offsets[c]:class_offsets[c+1]``
    is class c's run of ``order``. ``pair_*`` are the same-(video, class) pairs with tIoU >= the
    lowest threshold.

    Shapes:
        tiou_thresholds (T,); matched_gt (T, N) GT index or -1; order (N,); class_offsets (C+1,).
    """

    tiou_thresholds: np.ndarray
    labels: tuple[Any, ...]
    video_ids: np.ndarray
    gt: Segments
    pred: Segments
    matched_gt: np.ndarray
    order: np.ndarray
    class_offsets: np.ndarray
    pair_pred: np.ndarray
    pair_gt: np.ndarray
    pair_tiou: np.ndarray

    @cached_property
    def tp(self) -> np.ndarray:
        """(T, N) bool, in prediction row order."""
        return self.matched_gt >= 0

    @cached_property
    def num_gt(self) -> np.ndarray:
        """(C,) GT instances per class."""
        return np.bincount(self.gt.label, minlength=len(self.labels))


def _thresholds(tiou_thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    thr = np.atleast_1d(np.asarray(tiou_thresholds, dtype=np.float64))
    if thr.ndim != 1 or len(thr) == 0 or not ((thr > 0) & (thr <= 1)).all():
        raise ValueError(f"tiou_thresholds must be a non-empty list of values in (0, 1], got {tiou_thresholds!r}")
    return thr


def match_predictions(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    labels: Sequence[Any] | None = None,
    unknown_videos: UnknownVideos = "false_positive",
) -> Matching:
    """Match predictions to GT at every threshold, as the reference evaluator does."""
    thr = _thresholds(tiou_thresholds)
    gt, pred, space, video_ids = encode_inputs(ground_truth, predictions, labels, unknown_videos)
    n_videos = len(video_ids)
    pair_pred, pair_gt, pair_tiou = candidate_pairs(
        gt.label * n_videos + gt.video, gt, pred.label * n_videos + pred.video, pred, float(thr.min()))
    order = rank_order(pred.label, pred.score)
    precedence = np.empty(len(pred), dtype=np.int64)
    precedence[order] = np.arange(len(pred))
    matched = _greedy_match(pair_pred, pair_gt, pair_tiou, thr, precedence, len(pred), len(gt))
    offsets = np.searchsorted(pred.label[order], np.arange(len(space) + 1), side="left")
    return Matching(thr, space, video_ids, gt, pred, matched, order, offsets, pair_pred, pair_gt, pair_tiou)


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 interpolated AP, the reference's ``interpolated_prec_rec`` (same terms, same sum).

    Shapes:
        precision, recall: (N,) at each ranked prediction.
    """
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(mprec[::-1])[::-1]  # best precision at any later point
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * envelope[idx]))


def average_precision_per_class(matching: Matching) -> np.ndarray:
    """AP per threshold and class: 0 for a class without predictions, NaN without GT.

    Shapes:
        returns (T, C).
    """
    tp_ranked = matching.tp[:, matching.order]  # (T, N) in (class, score) rank order
    num_gt = matching.num_gt
    ap = np.zeros((len(matching.tiou_thresholds), len(matching.labels)))
    for c in range(len(matching.labels)):
        if num_gt[c] == 0:
            ap[:, c] = np.nan
            continue
        lo, hi = matching.class_offsets[c], matching.class_offsets[c + 1]
        if hi == lo:
            continue
        tp_cum = np.cumsum(tp_ranked[:, lo:hi], axis=1).astype(np.float64)
        precision = tp_cum / np.arange(1, hi - lo + 1)  # = tp / (tp + fp): every rank is one of them
        recall = tp_cum / float(num_gt[c])
        for t in range(len(matching.tiou_thresholds)):
            ap[t, c] = interpolated_average_precision(precision[t], recall[t])
    return ap


def _group_rank(key: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each item within its key group, following ``order`` (stable)."""
    sorted_idx = order[np.argsort(key[order], kind="stable")]
    sorted_key = key[sorted_idx]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    pos = np.arange(len(key))
    rank = np.empty(len(key), dtype=np.int64)
    rank[sorted_idx] = pos - np.maximum.accumulate(np.where(starts, pos, 0))
    return rank


def topkx_recall_per_class(matching: Matching, top_k: Sequence[int] = RECALL_TOP_KX) -> np.ndarray:
    """The reference's Recall@kx: per class and video, keep the k x (GT count) best predictions.

    A GT counts as recalled when any kept prediction reaches tIoU >= threshold with it (no
    one-to-one matching, as in the reference). NaN for classes without GT.

    Shapes:
        returns (T, K, C).
    """
    gt, pred = matching.gt, matching.pred
    n_videos, n_classes = len(matching.video_ids), len(matching.labels)
    group_gt = np.bincount(gt.label * n_videos + gt.video, minlength=n_classes * n_videos)
    rank = _group_rank(pred.label * n_videos + pred.video, matching.order)
    pair_rank = rank[matching.pair_pred]
    pair_limit = group_gt[gt.label[matching.pair_gt] * n_videos + gt.video[matching.pair_gt]]
    num_gt = matching.num_gt
    out = np.full((len(matching.tiou_thresholds), len(top_k), n_classes), np.nan)
    for t, thr in enumerate(matching.tiou_thresholds):
        for i, k in enumerate(top_k):
            hit = (matching.pair_tiou >= thr) & (pair_rank < k * pair_limit)
            recalled = np.zeros(len(gt), dtype=bool)
            recalled[matching.pair_gt[hit]] = True
            counts = np.bincount(gt.label[recalled], minlength=n_classes)
            out[t, i] = np.where(num_gt > 0, counts / np.maximum(num_gt, 1), np.nan)
    return out


@dataclass(frozen=True)
class MAPResult:
    """mAP and its parts. Fractions (not percent) everywhere; ``to_frame`` gives percent tables.

    Shapes:
        tiou_thresholds (T,); ap_per_class (T, C) (NaN: class without GT); recall_per_class
        (T, K, C) for ``top_k``; num_gt, num_predictions (C,).
    """

    tiou_thresholds: np.ndarray
    labels: tuple[Any, ...]
    ap_per_class: np.ndarray
    recall_per_class: np.ndarray
    top_k: tuple[int, ...]
    num_gt: np.ndarray
    num_predictions: np.ndarray

    @property
    def mAP(self) -> np.ndarray:  # noqa: N802 - the name every TAL paper uses
        """(T,) mAP per threshold, over classes with GT."""
        return self.ap_per_class[:, self.num_gt > 0].mean(axis=1)

    @property
    def average_mAP(self) -> float:  # noqa: N802
        """mAP averaged over thresholds."""
        return float(self.mAP.mean())

    @property
    def recall(self) -> np.ndarray:
        """(T, K) Recall@kx averaged over classes with GT."""
        return self.recall_per_class[:, :, self.num_gt > 0].mean(axis=2)

    def to_frame(self, percent: bool = True) -> pd.DataFrame:
        """One row per threshold plus 'average': mAP and Recall@kx."""
        scale = 100.0 if percent else 1.0
        index = [f"{t:.2f}" for t in self.tiou_thresholds] + ["average"]
        data = {"mAP": np.r_[self.mAP, self.average_mAP] * scale}
        for i, k in enumerate(self.top_k):
            data[f"Recall@{k}x"] = np.r_[self.recall[:, i], self.recall[:, i].mean()] * scale
        return pd.DataFrame(data, index=pd.Index(index, name="tIoU"))

    def per_class_frame(self, class_names: Sequence[str] | Mapping[Any, str] | None = None,
                        percent: bool = True) -> pd.DataFrame:
        """AP per class (rows) and threshold (columns), the class's average, and its GT count.

        Rows are named by ``class_names``: a mapping label -> name, a list aligned with
        ``labels`` (same length), or a list indexed by label id (:func:`read_class_names`).
        """
        scale = 100.0 if percent else 1.0
        if class_names is None:
            names = list(self.labels)
        elif isinstance(class_names, Mapping):
            names = [class_names[label] for label in self.labels]
        elif len(class_names) == len(self.labels):
            names = list(class_names)
        else:
            names = [class_names[int(label)] for label in self.labels]
        frame = pd.DataFrame(self.ap_per_class.T * scale, columns=[f"AP@{t:.2f}" for t in self.tiou_thresholds],
                             index=pd.Index(names, name="class"))
        frame["average"] = frame.mean(axis=1)
        frame["num_gt"] = self.num_gt
        return frame

    def __str__(self) -> str:
        return self.to_frame().round(2).to_string()


def mean_average_precision(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    labels: Sequence[Any] | None = None,
    top_k: Sequence[int] = RECALL_TOP_KX,
    unknown_videos: UnknownVideos = "false_positive",
) -> MAPResult:
    """ActivityNet detection mAP at each tIoU threshold, identical to ActionFormer's evaluator.

    Args:
        ground_truth: columns video-id, t-start, t-end, label (seconds).
        predictions: the same plus score; row order ranks tied scores.
        tiou_thresholds: values in (0, 1]; THUMOS14's 0.3:0.1:0.7 by default.
        labels: the label space; default the sorted GT labels. Classes without GT get AP NaN.
        top_k: the k of Recall@kx (the reference's 1x and 5x by default).
        unknown_videos: predictions for videos absent from GT: 'false_positive' (reference),
            'ignore' or 'error'.

    Returns:
        :class:`MAPResult` (``.mAP`` (T,), ``.average_mAP``, ``.ap_per_class`` (T, C), ...).
    """
    matching = match_predictions(ground_truth, predictions, tiou_thresholds, labels, unknown_videos)
    return MAPResult(
        tiou_thresholds=matching.tiou_thresholds,
        labels=matching.labels,
        ap_per_class=average_precision_per_class(matching),
        recall_per_class=topkx_recall_per_class(matching, top_k),
        top_k=tuple(int(k) for k in top_k),
        num_gt=matching.num_gt,
        num_predictions=np.diff(matching.class_offsets),
    )


def recall_at_k(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    k: Sequence[int] = RECALL_AT_K,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    class_aware: bool = True,
    labels: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Recall when each video keeps only its k best predictions (all classes together).

    A GT instance is recalled when a kept prediction of its video (of its class, unless
    ``class_aware`` is False) reaches tIoU >= threshold; predictions may cover several GTs.

    Returns:
        DataFrame, index tIoU threshold, columns ``R@k``, fractions.
    """
    thr = _thresholds(tiou_thresholds)
    gt, pred, space, video_ids = encode_inputs(ground_truth, predictions, labels, "ignore")
    n_videos = len(video_ids)
    gt_key = gt.label * n_videos + gt.video if class_aware else gt.video
    pred_key = pred.label * n_videos + pred.video if class_aware else pred.video
    pair_pred, pair_gt, pair_tiou = candidate_pairs(gt_key, gt, pred_key, pred, float(thr.min()))
    rank = _group_rank(pred.video, rank_order(np.zeros(len(pred), dtype=np.int64), pred.score))
    best_rank = np.full((len(thr), len(gt)), np.iinfo(np.int64).max)
    for t, threshold in enumerate(thr):
        hit = pair_tiou >= threshold
        np.minimum.at(best_rank[t], pair_gt[hit], rank[pair_pred[hit]])
    data = {f"R@{int(kk)}": (best_rank < kk).mean(axis=1) for kk in k}
    return pd.DataFrame(data, index=pd.Index(np.round(thr, 6), name="tIoU"))
