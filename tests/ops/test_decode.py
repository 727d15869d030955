"""Post-processing: golden detections, NMS against slow literal oracles, NMS properties, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tal_lab.ops.decode import (
    batched_nms,
    decode_candidates,
    hard_nms,
    postprocess_video,
    soft_nms,
)
from tal_lab.core.structures import grid_to_sec, sec_to_grid

from golden import AF_CASES, load_golden

THUMOS_TEST_CFG = {
    "pre_nms_thresh": 0.001, "pre_nms_topk": 2000, "iou_threshold": 0.1, "min_score": 0.001,
    "max_seg_num": 200, "nms_method": "soft", "nms_sigma": 0.5, "duration_thresh": 0.05,
    "multiclass_nms": True, "voting_thresh": 0.7,
}


# --------------------------------------------------------------------------------------------
# Golden fixtures


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", AF_CASES)
def test_detections_equal_reference(shared_dir: Path, case: str) -> None:
    fixture = load_golden(shared_dir, case)
    ev, det = fixture["eval"], fixture["detections"]
    points = [p.float() for p in ev["points"]]
    for b, video in enumerate(det["videos"]):
        logits = [x[b].float() for x in ev["cls_logits"]]
        offsets = [x[b].float() for x in ev["reg_offsets"]]
        valid = [x[b] for x in ev["fpn_masks"]]
        cfg = det["variants"]["thumos"]["test_cfg"]
        segs, scores, labels = decode_candidates(
            logits, offsets, points, valid, cfg["pre_nms_thresh"], cfg["pre_nms_topk"], cfg["duration_thresh"]
        )
        pre = det["pre_nms"][b]
        assert torch.equal(labels, pre["labels"])
        torch.testing.assert_close(scores, pre["scores"], rtol=0, atol=1e-6)
        torch.testing.assert_close(segs, pre["segments"], rtol=0, atol=2e-4)
        for name, variant in det["variants"].items():
            out = postprocess_video(
                logits, offsets, points, valid, variant["test_cfg"], fps=video["fps"], duration=video["duration"],
                feat_stride=video["feat_stride"], num_frames=video["feat_num_frames"],
            )
            ref = variant["per_video"][b]
            where = f"{case} video {b} variant {name}"
            assert torch.equal(out["labels"], ref["labels"]), where  # count, order and labels exact
            torch.testing.assert_close(out["scores"], ref["scores"], rtol=0, atol=1e-6, msg=where)
            torch.testing.assert_close(out["segments_grid"], ref["segments_grid"], rtol=0, atol=2e-4, msg=where)
            torch.testing.assert_close(out["segments_sec"], ref["segments_sec"], rtol=0, atol=2e-4, msg=where)


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


def _toy_head_outputs() -> tuple[list[torch.Tensor], ...]:
    """Two levels (strides 1 and 2), 3 classes, with one padded step per level."""
    logits = [torch.full((8, 3), -10.0), torch.full((4, 3), -10.0)]
    offsets = [torch.ones(8, 2), torch.ones(4, 2)]
    points = [
        torch.stack([torch.arange(8.0), torch.zeros(8), torch.full((8,), 4.0), torch.ones(8)], 1),
        torch.stack([torch.arange(0.0, 8.0, 2.0), torch.full((4,), 4.0), torch.full((4,), 1e4),
                     torch.full((4,), 2.0)], 1),
    ]
    valid = [torch.arange(8) < 7, torch.arange(4) < 3]
    logits[0][2, 1] = 2.0  # segment [1, 3], class 1
    logits[0][7, 0] = 5.0  # padded step: masked out
    logits[1][2, 2] = 1.0  # point t=4, stride 2, offsets (1, 3): [2, 10] class 2
    offsets[1][2] = torch.tensor([1.0, 3.0])
    logits[1][0, 0] = 0.5  # point t=0: [-2, 2], class 0 (clamped at 0 s)
    offsets[0][3] = torch.tensor([0.01, 0.02])  # too short (0.03 <= 0.05)
    logits[0][3, 0] = 3.0
    return logits, offsets, points, valid


def test_postprocess_units_and_clamping() -> None:
    logits, offsets, points, valid = _toy_head_outputs()
    fps, stride, frames, duration = 30.0, 4.0, 16.0, 1.0
    out = postprocess_video(logits, offsets, points, valid, THUMOS_TEST_CFG, fps, duration, stride, frames)
    assert out["labels"].tolist() == [1, 2, 0]  # sorted by score; padded and too-short ones gone
    torch.testing.assert_close(out["scores"], torch.sigmoid(torch.tensor([2.0, 1.0, 0.5])))
    torch.testing.assert_close(out["segments_grid"], torch.tensor([[1.0, 3.0], [2.0, 10.0], [-2.0, 2.0]]))
    expected_sec = grid_to_sec(out["segments_grid"], fps, stride, frames).clamp(0.0, duration)
    torch.testing.assert_close(out["segments_sec"], expected_sec)
    assert out["segments_sec"][1, 1].item() == duration and out["segments_sec"][2, 0].item() == 0.0
    # seconds -> grid round trip where nothing was clamped
    torch.testing.assert_close(sec_to_grid(out["segments_sec"][0], fps, stride, frames), out["segments_grid"][0])
    # nms_method "none": decoded candidates as they are (level order, not re-sorted)
    raw = postprocess_video(logits, offsets, points, valid, {**THUMOS_TEST_CFG, "nms_method": "none"},
                            fps, duration, stride, frames)
    assert raw["labels"].tolist() == [1, 2, 0]
    nothing = postprocess_video([x - 100 for x in logits], offsets, points, valid, THUMOS_TEST_CFG,
                                fps, duration, stride, frames)
    assert nothing["segments_sec"].shape == (0, 2) and nothing["labels"].shape == (0,)
    with pytest.raises(ValueError, match="nms_method"):
        postprocess_video(logits, offsets, points, valid, {**THUMOS_TEST_CFG, "nms_method": "greedy"},
                          fps, duration, stride, frames)
