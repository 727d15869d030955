"""Boundary distributions (TriDet, CVPR 2023): each boundary as a distribution over relative bins.

A Trident head predicts each boundary as a distribution over ``num_bins + 1`` relative bins:
the distance, in strides of the point's level, from the point to its segment's start (or end)
is d in {0, ..., num_bins}. The logit of bin d combines

* the **boundary** logit of the step at that distance (start side: step t - d, end side: step
  t + d; steps outside the level count as logit 0, TriDet's zero padding), and
* the **centre-offset** logit of bin d predicted at the point itself.

softmax over d gives the distribution; its expectation is the regressed distance. Everything here
is index-by-distance (bin d = distance d on both sides). TriDet's centre-offset channels are laid
out differently: its first ``num_bins + 1`` channels are the start side with channel j meaning
distance ``num_bins - j``, the next ``num_bins + 1`` the end side with channel j meaning distance
j. :func:`center_logits_by_distance` converts, so TriDet's weights decode to the same numbers.

The losses on these distributions: :mod:`tal_lab.ops.trident_losses`; decoding the expected
offsets into detections: :mod:`tal_lab.ops.decode`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SIDES", "boundary_neighbours", "center_logits_by_distance", "boundary_log_probs", "expected_offsets"]

SIDES = ("start", "end")


def boundary_neighbours(logits: Tensor, num_bins: int, side: str) -> Tensor:
    """Boundary logits of the steps at distance 0..num_bins from every step, by distance.

    Start side: entry d of step t is ``logits[t - d]``; end side: ``logits[t + d]``; steps
    outside [0, T) give 0 (TriDet pads each level with zeros).

    Shapes:
        logits: (B, T, K) -> (B, T, K, num_bins + 1).
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    x = logits.transpose(1, 2)  # (B, K, T)
    if side == "start":
        windows = F.pad(x, (num_bins, 0)).unfold(-1, num_bins + 1, 1)  # [..., t, j] = logits[t - nb + j]
        windows = windows.flip(-1)  # [..., t, d] = logits[t - d]
    else:
        windows = F.pad(x, (0, num_bins)).unfold(-1, num_bins + 1, 1)  # [..., t, d] = logits[t + d]
    return windows.permute(0, 2, 1, 3)  # (B, T, K, nb + 1)


def center_logits_by_distance(center: Tensor, num_bins: int) -> Tensor:
    """TriDet's centre-offset channels -> (start, end) logits indexed by distance.

    Shapes:
        center: (B, T, 2 * (num_bins + 1)) -> (B, T, 2, num_bins + 1).
    """
    if center.shape[-1] != 2 * (num_bins + 1):
        raise ValueError(f"centre-offset logits need 2 * (num_bins + 1) = {2 * (num_bins + 1)} channels, "
                         f"got {center.shape[-1]}")
    sides = center.reshape(*center.shape[:-1], 2, num_bins + 1)  # (B, T, 2, nb + 1)
    # TriDet's start channel j is distance nb - j; its end channel j is distance j
    return torch.stack((sides[..., 0, :].flip(-1), sides[..., 1, :]), dim=-2)


def boundary_log_probs(start_logits: Tensor, end_logits: Tensor, center: Tensor, num_bins: int) -> Tensor:
    """Log-probabilities of the start / end distance of every point, per boundary class.

    log p(d) = log_softmax_d(boundary logit at distance d + centre-offset logit of bin d).

    Args:
        start_logits, end_logits: boundary logits per step; K = num_classes (Trident: one
            distribution per class) or 1 (class-agnostic boundaries).
        center: centre-offset logits in TriDet's channel layout (see the module docstring).

    Shapes:
        start_logits, end_logits: (B, T, K); center: (B, T, 2 * (num_bins + 1));
        returns (B, T, K, 2, num_bins + 1), side 0 = start, 1 = end.
    """
    by_distance = center_logits_by_distance(center, num_bins)  # (B, T, 2, nb + 1)
    start = boundary_neighbours(start_logits, num_bins, "start") + by_distance[:, :, None, 0, :]
    end = boundary_neighbours(end_logits, num_bins, "end") + by_distance[:, :, None, 1, :]
    return torch.stack((start, end), dim=-2).log_softmax(dim=-1)


def expected_offsets(log_probs: Tensor) -> Tensor:
    """Expected (start, end) distances in strides: sum_d p(d) * d.

    Shapes:
        log_probs: (..., 2, num_bins + 1) -> (..., 2).
    """
    bins = torch.arange(log_probs.shape[-1], device=log_probs.device, dtype=log_probs.dtype)
    return (log_probs.exp() * bins).sum(-1)
