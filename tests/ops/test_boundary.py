"""tal_lab.ops.boundary: TriDet's boundary distributions and their expected offsets, by hand."""

from __future__ import annotations

import torch

from tal_lab.ops.boundary import boundary_log_probs, boundary_neighbours, center_logits_by_distance, expected_offsets


def test_neighbours_by_hand() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)  # (B, T, K)
    start = boundary_neighbours(logits, 2, "start")[0, :, 0]  # [t, d] = logits[t - d]
    end = boundary_neighbours(logits, 2, "end")[0, :, 0]  # [t, d] = logits[t + d]
    assert start.tolist() == [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]]
    assert end.tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 0]]
    # TriDet's channel layout: start channel j = distance nb - j, end channel j = distance j
    center = torch.arange(6.0).view(1, 1, 6)
    assert center_logits_by_distance(center, 2).tolist() == [[[[2, 1, 0], [3, 4, 5]]]]


def test_decoding_equals_tridets_formula() -> None:
    """Expectation of softmax(start logit at t - nb + j + centre channel j) with distances
    nb - j (TriDet's decode_offset, written as loops)."""
    gen = torch.Generator().manual_seed(0)
    nb, steps, classes = 3, 6, 2
    start, end = torch.randn(1, steps, classes, generator=gen), torch.randn(1, steps, classes, generator=gen)
    center = torch.randn(1, steps, 2 * (nb + 1), generator=gen)
    got = expected_offsets(boundary_log_probs(start, end, center, nb))[0]  # (T, K, 2)
    for t in range(steps):
        for k in range(classes):
            left_logits = torch.tensor([(start[0, t - nb + j, k] if t - nb + j >= 0 else 0.0) + center[0, t, j]
                                        for j in range(nb + 1)])
            right_logits = torch.tensor([(end[0, t + j, k] if t + j < steps else 0.0) + center[0, t, nb + 1 + j]
                                         for j in range(nb + 1)])
            left = (left_logits.softmax(0) * torch.arange(nb, -1, -1.0)).sum()
            right = (right_logits.softmax(0) * torch.arange(nb + 1.0)).sum()
            torch.testing.assert_close(got[t, k], torch.stack((left, right)))


def test_expected_offset_of_a_one_hot_distribution() -> None:
    log_probs = torch.full((1, 2, 5), -1e4)
    log_probs[0, 0, 3] = 0.0
    log_probs[0, 1, 1] = 0.0
    assert expected_offsets(log_probs.log_softmax(-1)).tolist() == [[3.0, 1.0]]
