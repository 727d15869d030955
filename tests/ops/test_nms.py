"""NMS against slow literal oracles of the reference extension, NMS properties, voting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tal_lab.ops.decode import suppress
from tal_lab.ops import nms_rows
from tal_lab.ops.nms import batched_nms, hard_nms, segment_voting, soft_nms


# --------------------------------------------------------------------------------------------
# Slow, literal oracles of the reference algorithms (one candidate at a time, float32 numpy)

F32 = np.float32


def _slow_soft_nms(segs: np.ndarray, scores: np.ndarray, sigma: float, min_score: float,
                   method: str, iou_threshold: float) -> list[tuple[int, float]]:
    """The extension's algorithm step by step: working array, swap-with-max, swap-with-last drops."""
    x1, x2 = [F32(v) for v in segs[:, 0]], [F32(v) for v in segs[:, 1]]
    sc = [F32(v) for v in scores]
    area = [F32(F32(b - a) + F32(1e-6)) for a, b in zip(x1, x2)]
    idx, n, out, i = list(range(len(sc))), len(sc), [], 0
    min_score32 = F32(min_score)
    while i < n:
        m = i
        for p in range(i + 1, n):
            if sc[m] < sc[p]:
                m = p
        for arr in (x1, x2, sc, area, idx):
            arr[i], arr[m] = arr[m], arr[i]
        out.append((idx[i], float(sc[i])))
        p = i + 1
        while p < n:
            inter = max(F32(0), F32(min(x2[i], x2[p]) - max(x1[i], x1[p])))
            ovr = F32(inter / F32(F32(area[i] + area[p]) - inter))
            if method == "gaussian":
                weight = F32(np.exp(np.float64(F32(-F32(ovr * ovr) / F32(sigma)))))
            else:
                weight = F32(1 - ovr) if ovr >= iou_threshold else F32(1)
            sc[p] = F32(sc[p] * weight)
            if sc[p] < min_score32:
                for arr in (x1, x2, sc, area, idx):
                    arr[p] = arr[n - 1]
                n, p = n - 1, p - 1
            p += 1
        i += 1
    return out


def _slow_hard_nms(segs: torch.Tensor, scores: torch.Tensor, iou_threshold: float, min_score: float) -> list[int]:
    keep_in = torch.nonzero(scores > min_score).flatten() if min_score > 0 else torch.arange(len(scores))
    order = keep_in[scores[keep_in].sort(descending=True).indices].tolist()
    area = (segs[:, 1] - segs[:, 0]) + 1e-6
    kept: list[int] = []
    suppressed = set()
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        kept.append(i)
        for j in order[a + 1:]:
            inter = (torch.minimum(segs[i, 1], segs[j, 1]) - torch.maximum(segs[i, 0], segs[j, 0])).clamp(min=0)
            if inter / (area[i] + area[j] - inter) >= iou_threshold:
                suppressed.add(j)
    return kept


def _random_candidates(seed: int, n: int, num_classes: int, levels: int = 5) -> tuple[torch.Tensor, ...]:
    """Candidates with many exact ties: quantised scores and duplicated segments."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, generator=gen) * 50
    half = torch.rand(n, generator=gen) * 6 + 0.1
    segs = torch.stack([centre - half, centre + half], 1)
    if seed % 3 == 0:
        segs[n // 2:] = segs[: n - n // 2].clone()
    scores = torch.randint(1, levels + 1, (n,), generator=gen).float() / levels
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    return segs, scores, labels


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_equals_slow_oracle_with_ties(method: str) -> None:
    for seed in range(40):
        segs, scores, _ = _random_candidates(seed, n=5 + seed, num_classes=1)
        min_score = 0.001 if seed % 4 else 0.3
        ref = _slow_soft_nms(segs.numpy(), scores.numpy(), 0.5, min_score, method, iou_threshold=0.3)
        ids, kept = soft_nms(segs, scores, iou_threshold=0.3, sigma=0.5, min_score=min_score, method=method)
        assert ids.tolist() == [r[0] for r in ref], f"seed {seed}"
        assert kept.tolist() == [r[1] for r in ref], f"seed {seed}"  # bit-exact float32
        capped, _ = soft_nms(segs, scores, 0.3, 0.5, min_score, method=method, max_num=3)
        assert capped.tolist() == ids[:3].tolist()


def test_hard_nms_equals_slow_oracle() -> None:
    for seed in range(30):
        segs, scores, _ = _random_candidates(seed, n=5 + 2 * seed, num_classes=1, levels=50)
        min_score = 0.0 if seed % 2 else 0.3
        assert hard_nms(segs, scores, 0.4, min_score).tolist() == _slow_hard_nms(segs, scores, 0.4, min_score)


@pytest.mark.parametrize("use_soft", [True, False])
def test_batched_nms_is_per_class_then_capped(use_soft: bool) -> None:
    segs, scores, labels = _random_candidates(7, n=300, num_classes=6, levels=8)  # many ties
    max_seg = 25
    out_segs, out_scores, out_labels = batched_nms(
        segs, scores, labels, 0.3, 0.01, max_seg, use_soft_nms=use_soft, multiclass=True, sigma=0.5
    )
    parts = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        if use_soft:
            ref = _slow_soft_nms(segs[members].numpy(), scores[members].numpy(), 0.5, 0.01, "gaussian", 0.3)
            parts += [(members[i].item(), s, c) for i, s in ref[:max_seg]]
        else:
            ref_ids = _slow_hard_nms(segs[members], scores[members], 0.3, 0.01)[:max_seg]
            parts += [(members[i].item(), scores[members[i]].item(), c) for i in ref_ids]
    order = torch.tensor([p[1] for p in parts]).sort(descending=True).indices[:max_seg].tolist()
    assert out_labels.tolist() == [parts[o][2] for o in order]
    assert out_scores.tolist() == [parts[o][1] for o in order]
    assert torch.equal(out_segs, segs[[parts[o][0] for o in order]])


@pytest.mark.parametrize("levels", [0, 6])
def test_multiclass_soft_nms_compacts_its_table_without_changing_the_result(
        levels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Classes of very different sizes run out at different steps: the table drops their rows and
    packs the rest (several times here), and every class still gets the oracle's picks and scores."""
    gen = torch.Generator().manual_seed(3)
    sizes = [400, 120, 45, 17, 5, 1]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])[torch.randperm(sum(sizes), generator=gen)]
    centre = torch.rand(len(labels), generator=gen) * 200
    segs = torch.stack([centre, centre + torch.rand(len(labels), generator=gen) * 8 + 0.1], 1)
    scores = torch.rand(len(labels), generator=gen) * 0.9 + 0.05
    if levels:  # exact ties: the untracked pass sees them and the tracked rerun decides
        scores = (scores * levels).ceil() / levels
    shrinks: list[tuple[int, int]] = []
    compact = nms_rows._SoftNMSTable.compact

    def recording_compact(table: nms_rows._SoftNMSTable) -> bool:
        before = table.scores.shape
        result = compact(table)
        if table.scores.shape != before:
            shrinks.append(tuple(table.scores.shape))
        return result

    monkeypatch.setattr(nms_rows._SoftNMSTable, "compact", recording_compact)
    out_segs, out_scores, out_labels = batched_nms(segs, scores, labels, 0.3, 0.001, 10_000, use_soft_nms=True,
                                                   multiclass=True, sigma=0.5)
    parts = []
    for c in range(len(sizes)):
        members = torch.nonzero(labels == c).flatten()
        ref = _slow_soft_nms(segs[members].numpy(), scores[members].numpy(), 0.5, 0.001, "gaussian", 0.3)
        parts += [(members[i].item(), s, c) for i, s in ref]
    order = torch.tensor([p[1] for p in parts]).sort(descending=True).indices.tolist()
    assert out_scores.tolist() == [parts[o][1] for o in order]  # bit-exact float32
    assert out_labels.tolist() == [parts[o][2] for o in order]
    assert torch.equal(out_segs, segs[[parts[o][0] for o in order]])
    if not levels:
        assert len(shrinks) >= 3 and shrinks[-1][0] == 1, shrinks  # rows dropped down to the largest class


def test_nms_properties() -> None:
    segs, scores, labels = _random_candidates(3, n=400, num_classes=4, levels=10_000)
    for use_soft in (True, False):
        out_segs, out_scores, out_labels = batched_nms(
            segs, scores, labels, 0.2, 0.001, 40, use_soft_nms=use_soft, multiclass=True
        )
        assert len(out_scores) == 40  # overall cap
        assert bool((out_scores[:-1] >= out_scores[1:]).all())  # sorted
        # a subset of the input: every output row is an input segment with the same label
        match = (out_segs[:, None, :] == segs[None]).all(-1) & (out_labels[:, None] == labels[None])
        assert bool(match.any(1).all())
        assert bool((out_scores <= scores.max()).all())
    # hard NMS: within a class no kept pair overlaps at or above the threshold
    out_segs, _, out_labels = batched_nms(segs, scores, labels, 0.2, 0.001, 1000, use_soft_nms=False)
    for c in out_labels.unique():
        s = out_segs[out_labels == c]
        inter = (torch.minimum(s[:, None, 1], s[None, :, 1]) - torch.maximum(s[:, None, 0], s[None, :, 0])).clamp(min=0)
        length = s[:, 1] - s[:, 0] + 1e-6
        iou = inter / (length[:, None] + length[None, :] - inter)
        assert bool((iou.fill_diagonal_(0) < 0.2).all())
    # the per-class cap never changes the overall top max_seg_num (a class's scores come out in
    # decreasing order); the overall cap gives exactly max_seg_num here
    full = batched_nms(segs, scores, labels, 0.2, 0.001, 1000)
    capped = batched_nms(segs, scores, labels, 0.2, 0.001, 7)
    assert len(full[1]) > 7 and all(torch.equal(a[:7], b) for a, b in zip(full, capped))


def test_min_score_is_strict_and_the_first_pick_is_never_tested() -> None:
    segs = torch.tensor([[0.0, 1.0], [5.0, 6.0], [10.0, 11.0]])  # no overlaps: Gaussian weight 1
    scores = torch.tensor([0.9, 0.001, 0.000999])
    ids, kept = soft_nms(segs, scores, 0.1, 0.5, min_score=0.001)
    assert ids.tolist() == [0, 1]  # equal to min_score survives, below it is dropped
    ids, kept = soft_nms(segs[2:], scores[2:], 0.1, 0.5, min_score=0.001)
    assert ids.tolist() == [0] and kept.tolist() == [scores[2].item()]  # alone: selected untested
    # hard NMS filters strictly above min_score first
    assert hard_nms(segs, scores, 0.1, min_score=0.001).tolist() == [0]


def test_agnostic_voting_and_empty_input() -> None:
    segs = torch.tensor([[0.0, 10.0], [0.0, 9.0], [20.0, 30.0]])
    scores = torch.tensor([0.9, 0.6, 0.5])
    labels = torch.tensor([0, 1, 1])
    out_segs, out_scores, out_labels = batched_nms(
        segs, scores, labels, 0.1, 0.001, 10, use_soft_nms=False, multiclass=False, voting_thresh=0.7
    )
    # hard agnostic NMS keeps segments 0 and 2; segment 0 is voted with segment 1 (IoU 0.9):
    # weights score x IoU -> (0.9 * 1, 0.6 * 0.9)
    w0, w1 = 0.9, 0.6 * 0.9
    expected_end = (w0 * 10 + w1 * 9) / (w0 + w1)
    assert out_labels.tolist() == [0, 1]
    torch.testing.assert_close(out_segs[0], torch.tensor([0.0, expected_end]))
    torch.testing.assert_close(out_segs[1], segs[2])
    empty = batched_nms(segs[:0], scores[:0], labels[:0], 0.1, 0.001, 10)
    assert [tuple(t.shape) for t in empty] == [(0, 2), (0,), (0,)]
    with pytest.raises(ValueError, match="max_seg_num"):
        batched_nms(segs, scores, labels, 0.1, 0.001, 0)


def test_voting_weights_score_x_iou_or_score_alone() -> None:
    """test_cfg.voting_weights against hand-computed votes: ActionFormer weighs each candidate by
    score x IoU, TriDet by score alone."""
    kept = torch.tensor([[0.0, 10.0]], dtype=torch.float64)
    candidates = torch.tensor([[0.0, 10.0], [0.0, 8.0], [2.0, 10.0], [20.0, 30.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.6, 0.3, 0.8], dtype=torch.float64)
    # IoU with [0, 10]: 1, 0.8, 0.8, 0 (below 0.5: no vote).
    # score x IoU: weights 0.9, 0.48, 0.24 (sum 1.62): start 0.48 / 1.62, end 15.24 / 1.62.
    torch.testing.assert_close(segment_voting(kept, candidates, scores, 0.5),
                               torch.tensor([[0.48 / 1.62, 15.24 / 1.62]], dtype=torch.float64))
    # score: weights 0.9, 0.6, 0.3 (sum 1.8): start 0.6 / 1.8, end 16.8 / 1.8.
    torch.testing.assert_close(segment_voting(kept, candidates, scores, 0.5, "score"),
                               torch.tensor([[0.6 / 1.8, 16.8 / 1.8]], dtype=torch.float64))
    with pytest.raises(ValueError, match="test_cfg.voting_weights must be one of"):
        segment_voting(kept, candidates, scores, 0.5, "iou")
    # through class-agnostic hard NMS (iou_threshold 0.7 keeps [0, 10] and [20, 30]) and decode's test_cfg
    labels = torch.tensor([0, 1, 0, 1])
    test_cfg = {"iou_threshold": 0.7, "min_score": 0.001, "max_seg_num": 10, "nms_method": "hard",
                "multiclass_nms": False, "nms_sigma": 0.5, "voting_thresh": 0.5, "voting_weights": "score"}
    segs, out_scores, _ = suppress(candidates.float(), scores.float(), labels, test_cfg)
    assert out_scores.tolist() == pytest.approx([0.9, 0.8])
    torch.testing.assert_close(segs, torch.tensor([[0.6 / 1.8, 16.8 / 1.8], [20.0, 30.0]]))
    segs, _, _ = suppress(candidates.float(), scores.float(), labels, {**test_cfg, "voting_weights": "score_iou"})
    torch.testing.assert_close(segs, torch.tensor([[0.48 / 1.62, 15.24 / 1.62], [20.0, 30.0]]))
