"""1-D (soft-)NMS: ActionFormer's ``batched_nms`` with its C++ ``nms_1d_cpu`` extension, in PyTorch.

Pure PyTorch on the device of its inputs (CPU or GPU): same kept candidates, order and labels as
the extension, bit-identical scores on the golden fixtures, and the extension's tie order. NMS
runs every class at once on a (classes x max_per_class) table: each greedy step takes every
class's maximum and decays that class's row against it, so a step is ~20 tensor operations
whatever the number of classes, and at most ``max_seg_num`` steps run (outputs come out in
decreasing score order). The reference behaviours kept, and why, are listed in
``docs/objective.md``. Decoding head outputs, and the per-video tail that calls this NMS:
:mod:`tal_lab.ops.decode`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tal_lab.config.dialects import VOTING_WEIGHTS
from tal_lab.core.threads import single_threaded_on_cpu

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

# Added to every segment length by the reference NMS extension before computing IoU.
NMS_LENGTH_EPS = 1e-6
SOFT_NMS_METHODS = ("gaussian", "linear")
# How often (in greedy steps) the loop checks whether every class has run out of candidates.
_EXHAUSTION_CHECK_EVERY = 16


def nms_iou(x1: Tensor, x2: Tensor, area: Tensor, best_x1: Tensor, best_x2: Tensor, best_area: Tensor) -> Tensor:
    """IoU with a selected segment in the extension's float32 operation order (bit equality):
    inter / ((best_area + area) - inter), areas being (x2 - x1) + 1e-6.

    Shapes:
        x1, x2, area: (K, L); best_*: (K, 1); returns (K, L).
    """
    inter = (torch.minimum(best_x2, x2) - torch.maximum(best_x1, x1)).clamp_(min=0)
    return inter / (best_area + area - inter)


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


# --------------------------------------------------------------------------------------------
# Batched greedy loops (one row per class)


def _reposition_after_drops(pos: Tensor, active: Tensor, dropped: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """Emulate how the reference's working array is reordered when candidates are dropped.

    The extension walks positions left to right; a dropped candidate is overwritten by the last
    one, which is then examined in turn. The net effect: with ``n'`` candidates left, the
    survivors at positions >= n' fill the dropped positions < n', the survivor with the largest
    position going to the smallest hole.

    Shapes:
        pos: (K, L) long, position of every candidate (meaningful where ``active``);
        active, dropped: (K, L) bool (``dropped`` a subset of ``active``); end: (K,) long, one
        past the last occupied position. Returns the new (pos, end).
    """
    num_rows, width = pos.shape
    new_end = end - dropped.sum(1)
    kept = active & ~dropped
    hole = dropped & (pos < new_end[:, None])
    tail = kept & (pos >= new_end[:, None])
    spare = width  # a dummy column for candidates that take no part
    slot = torch.where(active, pos, torch.full_like(pos, spare))
    ids = torch.arange(width, device=pos.device).expand(num_rows, width)
    # per position: is it a hole / a tail survivor, and which candidate sits there
    hole_at = pos.new_zeros((num_rows, width + 1)).scatter_(1, slot, hole.long())
    tail_at = pos.new_zeros((num_rows, width + 1)).scatter_(1, slot, tail.long())
    who_at = pos.new_zeros((num_rows, width + 1)).scatter_(1, slot, ids)
    hole_rank = torch.cumsum(hole_at, 1) - 1  # k-th hole from the left
    tail_rank = torch.flip(torch.cumsum(torch.flip(tail_at, [1]), 1), [1]) - 1  # k-th from the right
    by_rank = pos.new_zeros((num_rows, width + 1))
    by_rank.scatter_(1, torch.where(tail_at > 0, tail_rank, spare), who_at)
    mover = by_rank.gather(1, torch.where(hole_at > 0, hole_rank, spare))  # (K, L + 1)
    positions = torch.arange(width + 1, device=pos.device).expand(num_rows, width + 1)
    target = torch.where(hole_at > 0, mover, spare)
    new_pos = torch.cat([pos, pos.new_zeros((num_rows, 1))], 1)
    new_pos.scatter_(1, target, positions)
    return new_pos[:, :width], new_end


class _ReferencePositions:
    """Where the reference's working array holds each candidate of every row, to follow its tie order.

    The extension takes the maximum that comes first in its working array, swaps the candidate
    at the front of that array into the maximum's place, and overwrites dropped candidates
    (:func:`_reposition_after_drops`).

    Shapes:
        valid: (K, L) bool, the candidates of each row.
    """

    def __init__(self, valid: Tensor) -> None:
        num_rows, width = valid.shape
        self.rows = torch.arange(num_rows, device=valid.device)
        self.pos = torch.arange(width, device=valid.device).expand(num_rows, width).clone()
        self.end = valid.sum(1)
        self.beyond = torch.tensor(width + 1, device=valid.device)  # a position after every candidate

    def pick(self, active: Tensor, masked: Tensor, best_score: Tensor) -> Tensor:
        """The column of each row's maximum that the reference selects; updates the positions."""
        at_max = active & (masked == best_score[:, None])
        best = torch.where(at_max, self.pos, self.beyond).argmin(1)
        front = torch.where(active, self.pos, self.beyond).argmin(1)
        self.pos[self.rows, front] = self.pos[self.rows, best]
        return best

    def drop(self, active: Tensor, dropped: Tensor) -> None:
        """Reorder the positions as the reference does when ``dropped`` leave the array."""
        self.pos, self.end = _reposition_after_drops(self.pos, active, dropped, self.end)


def _soft_nms_decay(iou: Tensor, method: str, iou_threshold: float, sigma: Tensor, zero64: Tensor) -> Tensor:
    """The factor each remaining score is multiplied by, for its IoU with the selected segment.

    Shapes:
        iou: (K, L); sigma: 0-d, in the scores' dtype; zero64: 0-d float64 zero (made once by the
        caller: the loop is kept lean); returns (K, L) in the scores' dtype.
    """
    if method == "gaussian":
        # exp in float64, rounded once: the correctly rounded expf of the reference's libm.
        # 0 - x rather than -x: exp(-0.0) hits a very slow path on some CPUs, and
        # -(a) / s equals 0 - a / s bit for bit (sign-symmetric rounding)
        return torch.exp(zero64 - torch.div(iou * iou, sigma).double()).to(sigma.dtype)
    return torch.where(iou >= iou_threshold, 1 - iou, torch.ones_like(iou))  # linear


def _soft_nms_rows(
    x1: Tensor, x2: Tensor, scores: Tensor, valid: Tensor, sigma: float, min_score: float,
    iou_threshold: float, method: str, max_steps: int, track_ties: bool,
) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Soft-NMS on every row at once.

    Each step costs a fixed, small number of tensor operations (per-op overhead dominates at
    these sizes, so the loop body is kept lean: no per-step host syncs except a periodic check
    that every row is exhausted).

    Returns:
        selected column (K, S), its decayed score (K, S), whether the step selected anything
        (K, S), and whether two maxima were ever exactly tied (only checked when ``track_ties``
        is False; the caller then reruns with tracking, which reproduces the reference's order;
        without a tie every maximum is unique, so any argmax is the reference's).

    Shapes:
        x1, x2, scores: (K, L) float; valid: (K, L) bool; S <= max_steps.
    """
    num_rows, width = scores.shape
    area = (x2 - x1) + NMS_LENGTH_EPS
    boxes = torch.stack((x1, x2, area), -1)  # (K, L, 3): one gather per step fetches all three
    scores = scores.clone()
    active = valid.clone()
    # a 0-d tensor on the device: a python-scalar divisor may become a multiplication by its
    # reciprocal on some devices, which changes the last bit of the decay
    sigma_t = torch.tensor(sigma, dtype=scores.dtype, device=scores.device)
    zero64 = torch.zeros((), dtype=torch.float64, device=scores.device)
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    positions = _ReferencePositions(valid) if track_ties else None
    # without tracking, the two highest scores of every step are kept: a tie between maxima
    # (second == first) means the order may differ from the reference's and the caller reruns
    use_top2 = not track_ties and width >= 2
    picks, picked_scores, runners_up = [], [], []
    for step in range(max_steps):
        masked = torch.where(active, scores, neg_inf)
        if use_top2:
            top_scores, top_index = masked.topk(2, dim=1)
            best_score, best = top_scores[:, 0], top_index[:, 0]
            runners_up.append(top_scores[:, 1])
        else:
            best_score, best = masked.max(dim=1)
        if positions is not None:
            best = positions.pick(active, masked, best_score)
        picks.append(best)
        picked_scores.append(best_score)
        index = best[:, None]
        active.scatter_(1, index, False)
        chosen = boxes.gather(1, index[..., None].expand(num_rows, 1, 3))  # (K, 1, 3)
        iou = nms_iou(x1, x2, area, chosen[..., 0], chosen[..., 1], chosen[..., 2])
        scores.mul_(_soft_nms_decay(iou, method, iou_threshold, sigma_t, zero64))
        if positions is not None:
            dropped = active & (scores < min_score)
            positions.drop(active, dropped)
            active &= ~dropped
        else:
            active &= scores >= min_score
        if (step + 1) % _EXHAUSTION_CHECK_EVERY == 0 and not bool(active.any()):
            break
    picks_t, scores_t = torch.stack(picks, 1), torch.stack(picked_scores, 1)
    picked_any = scores_t > neg_inf
    tie_seen = use_top2 and bool(((torch.stack(runners_up, 1) == scores_t) & picked_any).any())
    return picks_t, scores_t, picked_any, tie_seen


def _hard_nms_rows(
    x1: Tensor, x2: Tensor, valid: Tensor, iou_threshold: float, max_steps: int
) -> tuple[Tensor, Tensor]:
    """Greedy hard NMS on every row at once; rows are already in decreasing score order.

    Returns:
        selected column (K, S) and whether the step selected anything (K, S).

    Shapes:
        x1, x2: (K, L) float; valid: (K, L) bool.
    """
    num_rows = x1.shape[0]
    area = (x2 - x1) + NMS_LENGTH_EPS
    boxes = torch.stack((x1, x2, area), -1)  # (K, L, 3)
    active = valid.clone()
    picks, picked_any = [], []
    for step in range(max_steps):
        index = active.to(torch.uint8).argmax(1, keepdim=True)  # first candidate still standing
        picks.append(index)
        picked_any.append(active.gather(1, index))
        active.scatter_(1, index, False)
        chosen = boxes.gather(1, index[..., None].expand(num_rows, 1, 3))  # (K, 1, 3)
        iou = nms_iou(x1, x2, area, chosen[..., 0], chosen[..., 1], chosen[..., 2])
        active &= iou < iou_threshold
        if (step + 1) % _EXHAUSTION_CHECK_EVERY == 0 and not bool(active.any()):
            break
    return torch.cat(picks, 1), torch.cat(picked_any, 1)


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
        picks, picked_scores, picked_any, tie_seen = _soft_nms_rows(
            x1, x2, sc, valid, sigma, min_score, iou_threshold, method, steps, track_ties=False
        )
        if tie_seen:  # rare: rerun reproducing the reference's tie order
            picks, picked_scores, picked_any, _ = _soft_nms_rows(
                x1, x2, sc, valid, sigma, min_score, iou_threshold, method, steps, track_ties=True
            )
    else:
        picks, picked_any = _hard_nms_rows(x1, x2, valid, iou_threshold, steps)
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
