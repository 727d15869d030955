"""The greedy loops of the batched 1-D NMS (:mod:`tal_lab.ops.nms`): one row per class, all rows at once.

Each greedy step takes every row's maximum (soft-NMS) or first remaining candidate (hard NMS) and
suppresses the rest of that row against it, in the reference extension's float32 operation
order. Packing candidates into rows, and the public API: :mod:`tal_lab.ops.nms`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NMS_LENGTH_EPS", "hard_nms_rows", "nms_iou", "soft_nms_rows"]

# Added to every segment length by the reference NMS extension before computing IoU.
NMS_LENGTH_EPS = 1e-6
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


class _SoftNMSTable:
    """The working table of the batched soft-NMS: one row per class, one column per candidate.

    ``row_id`` / ``col_id`` say where each entry sits in the input table, so that the table can
    be compacted (:meth:`compact`) without changing what a step computes: every entry's IoU,
    decay and score are elementwise, whatever the other entries of the table are.

    Shapes:
        x1, x2, scores: (K, L) float; valid: (K, L) bool.
    """

    def __init__(self, x1: Tensor, x2: Tensor, scores: Tensor, valid: Tensor) -> None:
        num_rows, width = scores.shape
        device = scores.device
        self.x1, self.x2, self.area = x1, x2, (x2 - x1) + NMS_LENGTH_EPS  # contiguous: the IoU reads them
        self.boxes = torch.stack((x1, x2, self.area), -1)  # (K, L, 3): one gather per step fetches all three
        self.scores = scores.clone()
        self.active = valid.clone()
        self.row_id = torch.arange(num_rows, device=device)
        self.col_id = torch.arange(width, device=device).expand(num_rows, width)

    @property
    def size(self) -> int:
        return self.scores.numel()

    def step(self, best: Tensor, method: str, iou_threshold: float, sigma: Tensor, zero64: Tensor) -> None:
        """Take column ``best`` of every row out and decay the row's other scores against it.

        Shapes:
            best: (K,) long, a column of each row (of an exhausted row: any column).
        """
        index = best[:, None]
        self.active.scatter_(1, index, False)
        num_rows = best.shape[0]
        chosen = self.boxes.gather(1, index[..., None].expand(num_rows, 1, 3))  # (K, 1, 3)
        iou = nms_iou(self.x1, self.x2, self.area, chosen[..., 0], chosen[..., 1], chosen[..., 2])
        self.scores.mul_(_soft_nms_decay(iou, method, iou_threshold, sigma, zero64))

    def compact(self) -> bool:
        """Drop exhausted rows and pack every row's remaining candidates to the left (in column
        order), when that shrinks the table by a quarter or more; False when nothing is left.

        Per-step work is proportional to the table's size: late in a long NMS only a few
        classes still have candidates, and only their remaining ones need computing.
        """
        counts = self.active.sum(1)
        left = int(counts.max()) if counts.numel() else 0
        if left == 0:
            return False
        rows = torch.nonzero(counts > 0).squeeze(1)
        width = max(left, 2)  # the step keeps the two highest scores of a row
        if rows.numel() * width > 0.75 * self.size:
            return True
        active = self.active[rows]
        row_in, col_in = torch.nonzero(active, as_tuple=True)
        col_out = (torch.cumsum(active, 1) - 1)[row_in, col_in]
        src_rows = rows[row_in]
        shape = (rows.numel(), width)
        boxes = self.boxes.new_zeros((*shape, 3))
        boxes[..., 2] = 1.0  # a positive area for the unused entries: their IoU stays finite
        boxes[row_in, col_out] = self.boxes[src_rows, col_in]
        self.boxes = boxes
        self.x1, self.x2, self.area = (t.contiguous() for t in boxes.unbind(-1))
        self.scores = self.scores.new_zeros(shape).index_put_((row_in, col_out), self.scores[src_rows, col_in])
        self.active = self.active.new_zeros(shape).index_put_((row_in, col_out), active[row_in, col_in])
        self.col_id = self.col_id.new_zeros(shape).index_put_((row_in, col_out), self.col_id[src_rows, col_in])
        self.row_id = self.row_id[rows]
        return True


def soft_nms_rows(
    x1: Tensor, x2: Tensor, scores: Tensor, valid: Tensor, sigma: float, min_score: float,
    iou_threshold: float, method: str, max_steps: int, track_ties: bool,
) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Soft-NMS on every row at once.

    Each step costs a fixed, small number of tensor operations (per-op overhead dominates at
    these sizes, so the loop body is kept lean: no per-step host syncs except a periodic check
    that every row is exhausted, where, without tie tracking, the table is also compacted).

    Returns:
        selected column (K, S), its decayed score (K, S), whether the step selected anything
        (K, S), and whether two maxima were ever exactly tied (only checked when ``track_ties``
        is False; the caller then reruns with tracking, which reproduces the reference's order;
        without a tie every maximum is unique, so any argmax is the reference's).

    Shapes:
        x1, x2, scores: (K, L) float; valid: (K, L) bool; S <= max_steps.
    """
    num_rows, width = scores.shape
    table = _SoftNMSTable(x1, x2, scores, valid)
    # a 0-d tensor on the device: a python-scalar divisor may become a multiplication by its
    # reciprocal on some devices, which changes the last bit of the decay
    sigma_t = torch.tensor(sigma, dtype=scores.dtype, device=scores.device)
    zero64 = torch.zeros((), dtype=torch.float64, device=scores.device)
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    positions = _ReferencePositions(valid) if track_ties else None
    # without tracking, the two highest scores of every step are kept: a tie between maxima
    # (second == first) means the order may differ from the reference's and the caller reruns
    use_top2 = not track_ties and width >= 2
    # per stretch between compactions: (row ids, input columns (K', s), scores (K', s), runners-up)
    stretches: list[tuple[Tensor, Tensor, Tensor, Tensor | None]] = []
    picks, picked_scores, runners_up = [], [], []

    def close_stretch() -> None:
        if picks:
            columns = table.col_id.gather(1, torch.stack(picks, 1))
            stretches.append((table.row_id, columns, torch.stack(picked_scores, 1),
                              torch.stack(runners_up, 1) if use_top2 else None))
            picks.clear(), picked_scores.clear(), runners_up.clear()

    for step in range(max_steps):
        masked = torch.where(table.active, table.scores, neg_inf)
        if use_top2:
            top_scores, top_index = masked.topk(2, dim=1)
            best_score, best = top_scores[:, 0], top_index[:, 0]
            runners_up.append(top_scores[:, 1])
        else:
            best_score, best = masked.max(dim=1)
        if positions is not None:
            best = positions.pick(table.active, masked, best_score)
        picks.append(best)
        picked_scores.append(best_score)
        table.step(best, method, iou_threshold, sigma_t, zero64)
        if positions is not None:
            dropped = table.active & (table.scores < min_score)
            positions.drop(table.active, dropped)
            table.active &= ~dropped
        else:
            table.active &= table.scores >= min_score
        if (step + 1) % _EXHAUSTION_CHECK_EVERY == 0:
            if positions is not None:
                if not bool(table.active.any()):
                    break
                continue
            close_stretch()
            if not table.compact():
                break
    close_stretch()
    return _assemble_stretches(stretches, num_rows, scores, neg_inf)


def _assemble_stretches(
    stretches: list[tuple[Tensor, Tensor, Tensor, Tensor | None]], num_rows: int, scores: Tensor, neg_inf: Tensor,
) -> tuple[Tensor, Tensor, Tensor, bool]:
    """The (K, S) picks, scores, picked flags and tie flag of :func:`soft_nms_rows` from its
    stretches (rows absent from a stretch selected nothing in it)."""
    total = sum(columns.shape[1] for _, columns, _, _ in stretches)
    picks = torch.zeros((num_rows, total), dtype=torch.long, device=scores.device)
    picked = scores.new_full((num_rows, total), float("-inf"))
    runners = scores.new_full((num_rows, total), float("-inf"))
    start = 0
    for rows, columns, stretch_scores, stretch_runners in stretches:
        span = slice(start, start + columns.shape[1])
        picks[rows, span] = columns
        picked[rows, span] = stretch_scores
        if stretch_runners is not None:
            runners[rows, span] = stretch_runners
        start += columns.shape[1]
    picked_any = picked > neg_inf
    tie_seen = bool(((runners == picked) & picked_any).any())
    return picks, picked, picked_any, tie_seen


def hard_nms_rows(
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
