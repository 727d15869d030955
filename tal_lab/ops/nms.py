"""1-D (soft-)NMS: ActionFormer's ``batched_nms`` with its C++ ``nms_1d_cpu`` extension, in PyTorch.

Pure PyTorch on the device of its inputs (CPU or GPU): same kept candidates, order and labels as
the extension, bit-identical scores on the golden fixtures, and the extension's tie order. NMS
runs every class at once on a (classes x max_per_class) table: each greedy step takes every
class's maximum and decays that class's row against it, so a step is ~20 tensor operations
whatever the number of classes, and at most ``max_seg_num`` steps run (outputs come out in
decreasing score order). Every 16 steps the table drops the classes that ran out and packs the
remaining candidates, so a long NMS (TriDet keeps 2000) ends on the few largest classes. The
loops: :mod:`tal_lab.ops.nms_rows`. The reference behaviours kept, and why, are listed in
``docs/objective.md``. Decoding head outputs, and the per-video tail that calls this NMS:
:mod:`tal_lab.ops.decode`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tal_lab.config.dialects import VOTING_WEIGHTS
from tal_lab.core.threads import single_threaded_on_cpu
from tal_lab.ops.nms_rows import NMS_LENGTH_EPS, hard_nms_rows, nms_iou, soft_nms_rows

__all__ = [
    "NMS_LENGTH_EPS",
    "SOFT_NMS_METHODS",
    "batched_nms",
    "float32_at_least",
    "hard_nms",
    "nms_iou",
    "segment_voting",
    "soft_nms",
]

SOFT_NMS_METHODS = ("gaussian", "linear")


# --------------------------------------------------------------------------------------------
# Packing candidates per class


def _pack_rows(row: Tensor, col: Tensor, num_rows: int, width: int, *values: Tensor) -> list[Tensor]:
    """Scatter flat per-candidate values into (num_rows, width) tables at (row, col)."""
    return [value.new_zeros((num_rows, width)).index_put_((row, col), value) for value in values]


def _group_by_class(labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Row (class) and column of every candidate, keeping the candidates' order within a class.

    Returns:
        classes (K,) sorted class ids present, row (N,), col (N,), counts (K,).
    """
    classes, row, counts = torch.unique(labels, sorted=True, return_inverse=True, return_counts=True)
    # a candidate's column is its rank among the candidates of its class (input order)
    order = torch.sort(row, stable=True).indices  # (N,) grouped by class, input order inside
    starts = torch.cumsum(counts, 0) - counts  # (K,)
    col = torch.empty_like(row)
    col[order] = torch.arange(labels.numel(), device=labels.device) - starts[row[order]]
    return classes, row, col, counts


def float32_at_least(tensor: Tensor) -> Tensor:
    """Half / bfloat16 (AMP) outputs are decoded and suppressed in float32, as the reference does."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _check_candidates(segments: Tensor, scores: Tensor, labels: Tensor | None = None) -> None:
    if segments.dim() != 2 or segments.shape[1] != 2:
        raise ValueError(f"segments must be (N, 2), got {tuple(segments.shape)}")
    if scores.shape != segments.shape[:1]:
        raise ValueError(f"scores must be ({segments.shape[0]},), got {tuple(scores.shape)}")
    if labels is not None and labels.shape != segments.shape[:1]:
        raise ValueError(f"labels must be ({segments.shape[0]},), got {tuple(labels.shape)}")


def _nms_per_row(
    segments: Tensor, scores: Tensor, row: Tensor, iou_threshold: float, min_score: float,
    max_num: int | None, use_soft_nms: bool, sigma: float, method: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """NMS independently inside each row (class); candidates listed in input order.

    Returns:
        kept candidate indices, their (decayed) scores, and their row, ordered by row, then in
        each row in the order the greedy loop selected them (decreasing score).
    """
    device = segments.device
    # the reference filters before hard NMS (its scores never change afterwards)
    prefilter = not use_soft_nms and min_score > 0
    cand = torch.nonzero(scores > min_score).squeeze(1) if prefilter else torch.arange(len(scores), device=device)
    if cand.numel() == 0:
        return segments.new_zeros(0, dtype=torch.long), scores.new_zeros(0), row.new_zeros(0)
    cand_scores, cand_row = scores[cand], row[cand]
    if not use_soft_nms:
        # per row, sort like the extension does: torch.sort of that row's scores, in input order
        order_parts = []
        for r in torch.unique(cand_row).tolist():
            members = torch.nonzero(cand_row == r).squeeze(1)
            order_parts.append(members[cand_scores[members].sort(descending=True).indices])
        ordering = torch.cat(order_parts)
        cand, cand_scores, cand_row = cand[ordering], cand_scores[ordering], cand_row[ordering]
    rows_present, local_row, col, counts = _group_by_class(cand_row)
    num_local = rows_present.numel()
    width = int(counts.max())
    steps = min(width, max_num) if max_num is not None else width
    seg = segments[cand]
    x1, x2, sc, ids = _pack_rows(local_row, col, num_local, width, seg[:, 0], seg[:, 1], cand_scores, cand)
    valid = torch.zeros((num_local, width), dtype=torch.bool, device=device)
    valid[local_row, col] = True
    if use_soft_nms:
        picks, picked_scores, picked_any, tie_seen = soft_nms_rows(
            x1, x2, sc, valid, sigma, min_score, iou_threshold, method, steps, track_ties=False
        )
        if tie_seen:  # rare: rerun reproducing the reference's tie order
            picks, picked_scores, picked_any, _ = soft_nms_rows(
                x1, x2, sc, valid, sigma, min_score, iou_threshold, method, steps, track_ties=True
            )
    else:
        picks, picked_any = hard_nms_rows(x1, x2, valid, iou_threshold, steps)
        picked_scores = sc.gather(1, picks)
    kept_ids = ids.gather(1, picks)[picked_any]  # row-major: by row, then selection order
    kept_scores = picked_scores[picked_any]
    kept_rows = rows_present[:, None].expand_as(picks)[picked_any]
    return kept_ids, kept_scores, kept_rows


# --------------------------------------------------------------------------------------------
# Public NMS API


@single_threaded_on_cpu
def soft_nms(
    segments: Tensor, scores: Tensor, iou_threshold: float, sigma: float, min_score: float,
    method: str = "gaussian", max_num: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Single-class soft-NMS (Bodla et al.), identical to ActionFormer's C++ ``softnms``.

    Greedy: take the highest score, output it, decay every remaining score by
    exp(-IoU^2 / sigma) (``"gaussian"``) or by (1 - IoU) where IoU >= iou_threshold
    (``"linear"``), drop candidates whose decayed score is < min_score, repeat.

    Args:
        iou_threshold: used by the linear method only (the Gaussian one ignores it).
        max_num: keep at most this many (the first ones selected); None keeps all.

    Returns:
        indices into the input of the kept candidates, in selection (decreasing score) order,
        and their decayed scores.

    Shapes:
        segments: (N, 2) float32 [start, end]; scores: (N,); returns (M,) long and (M,).
    """
    _check_candidates(segments, scores)
    segments, scores = float32_at_least(segments), float32_at_least(scores)
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"soft-NMS method must be one of {SOFT_NMS_METHODS}, got {method!r}")
    row = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
    ids, kept, _ = _nms_per_row(segments, scores, row, iou_threshold, min_score, max_num, True, sigma, method)
    return ids, kept


@single_threaded_on_cpu
def hard_nms(
    segments: Tensor, scores: Tensor, iou_threshold: float, min_score: float, max_num: int | None = None
) -> Tensor:
    """Single-class greedy NMS, identical to ActionFormer's ``NMSop``: drop scores <= min_score
    (when min_score > 0), then suppress every candidate with IoU >= iou_threshold to a kept one.

    Returns:
        indices into the input of the kept candidates, in decreasing score order.

    Shapes:
        segments: (N, 2); scores: (N,); returns (M,) long.
    """
    _check_candidates(segments, scores)
    segments, scores = float32_at_least(segments), float32_at_least(scores)
    row = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
    ids, _, _ = _nms_per_row(segments, scores, row, iou_threshold, min_score, max_num, False, 0.0, "gaussian")
    return ids


@single_threaded_on_cpu
def segment_voting(nms_segments: Tensor, all_segments: Tensor, all_scores: Tensor, iou_threshold: float,
                   weights: str = "score_iou") -> Tensor:
    """Refine each kept segment as the mean of all candidates overlapping it by IoU >=
    iou_threshold (box voting, plain IoU without the 1e-6), each candidate weighted by
    score x IoU (``weights='score_iou'``, ActionFormer's ``seg_voting``) or by its score alone
    (``'score'``, TriDet's): ``test_cfg.voting_weights``.

    Shapes:
        nms_segments: (M, 2); all_segments: (N, 2); all_scores: (N,); returns (M, 2).
    """
    if weights not in VOTING_WEIGHTS:
        raise ValueError(f"test_cfg.voting_weights must be one of {VOTING_WEIGHTS}, got {weights!r}")
    start = torch.maximum(nms_segments[:, None, 0], all_segments[None, :, 0])
    end = torch.minimum(nms_segments[:, None, 1], all_segments[None, :, 1])
    inter = (end - start).clamp(min=0)  # (M, N)
    len_nms = nms_segments[:, 1] - nms_segments[:, 0]
    len_all = all_segments[:, 1] - all_segments[:, 0]
    iou = inter / (len_nms[:, None] + len_all[None, :] - inter)
    vote = (iou >= iou_threshold).to(all_scores.dtype) * all_scores[None, :]
    if weights == "score_iou":
        vote = vote * iou
    vote = vote / vote.sum(dim=1, keepdim=True)
    return vote @ all_segments


@single_threaded_on_cpu
def batched_nms(
    segments: Tensor, scores: Tensor, labels: Tensor, iou_threshold: float, min_score: float,
    max_seg_num: int, use_soft_nms: bool = True, multiclass: bool = True, sigma: float = 0.5,
    voting_thresh: float | None = 0.75, soft_method: str = "gaussian", voting_weights: str = "score_iou",
) -> tuple[Tensor, Tensor, Tensor]:
    """ActionFormer's ``batched_nms``: NMS per class (or class-agnostic), then the top
    ``max_seg_num`` by score.

    With ``multiclass``, each class is suppressed on its own and capped at ``max_seg_num``; the
    union is sorted by score and capped again. Class-agnostic NMS suppresses across labels and
    then, unless ``voting_thresh`` is None (the reference's ``<= 0``), replaces each kept segment
    by its vote over all candidates (:func:`segment_voting`, weighted as ``voting_weights`` says).

    Returns:
        segments (M, 2), scores (M,), labels (M,), sorted by decreasing score, M <= max_seg_num.

    Shapes:
        segments: (N, 2) float32 [start, end]; scores: (N,); labels: (N,) long.
    """
    _check_candidates(segments, scores, labels)
    segments, scores = float32_at_least(segments), float32_at_least(scores)
    if max_seg_num < 1:
        raise ValueError(f"max_seg_num must be a positive integer, got {max_seg_num!r}")
    if voting_thresh is not None and not voting_thresh > 0:
        raise ValueError(f"voting_thresh must be a positive IoU or None (no voting), got {voting_thresh!r}")
    if use_soft_nms and soft_method not in SOFT_NMS_METHODS:
        raise ValueError(f"soft-NMS method must be one of {SOFT_NMS_METHODS}, got {soft_method!r}")
    if segments.shape[0] == 0:
        return segments.new_zeros((0, 2)), scores.new_zeros((0,)), labels.new_zeros((0,))
    row = labels if multiclass else torch.zeros_like(labels)
    ids, kept_scores, _ = _nms_per_row(
        segments, scores, row, iou_threshold, min_score, max_seg_num, use_soft_nms, sigma, soft_method
    )
    kept_segments, kept_labels = segments[ids], labels[ids]
    if not multiclass and voting_thresh is not None:
        kept_segments = segment_voting(kept_segments, segments, scores, voting_thresh, voting_weights)
    # torch.sort as the reference calls it, so that ties keep the reference's order on CPU
    order = kept_scores.sort(descending=True).indices[:max_seg_num]
    return kept_segments[order], kept_scores[order], kept_labels[order]
