"""Decoding: golden detections, the one tail every head shares, units, nms_method 'none'."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tal_lab.core.structures import sec_to_grid
from tal_lab.ops.decode import decode_video, level_scores, level_segments, select_candidates

from golden import AF_CASES, load_golden

THUMOS_TEST_CFG = {
    "pre_nms_thresh": 0.001, "pre_nms_topk": 2000, "iou_threshold": 0.1, "min_score": 0.001,
    "max_seg_num": 200, "nms_method": "soft", "nms_sigma": 0.5, "duration_thresh": 0.05,
    "multiclass_nms": True, "voting_thresh": 0.7,
}


def _actionformer_candidates(
    logits: list[torch.Tensor], offsets: list[torch.Tensor], points: list[torch.Tensor], valid: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """ActionFormer's per-level candidates, as its head supplies them: one offset pair per point (K = 1)."""
    return ([level_scores(x, m) for x, m in zip(logits, valid)],
            [level_segments(x[:, None, :], p) for x, p in zip(offsets, points)])


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
        level_prob, level_segs = _actionformer_candidates(logits, offsets, points, valid)
        cfg = det["variants"]["thumos"]["test_cfg"]
        segs, scores, labels = select_candidates(
            level_prob, level_segs, cfg["pre_nms_thresh"], cfg["pre_nms_topk"], cfg["duration_thresh"]
        )
        pre = det["pre_nms"][b]
        assert torch.equal(labels, pre["labels"])
        torch.testing.assert_close(scores, pre["scores"], rtol=0, atol=1e-6)
        torch.testing.assert_close(segs, pre["segments"], rtol=0, atol=2e-4)
        for name, variant in det["variants"].items():
            out = decode_video(level_prob, level_segs, variant["test_cfg"], video)
            ref = variant["per_video"][b]
            where = f"{case} video {b} variant {name}"
            assert torch.equal(out["labels"], ref["labels"]), where  # count, order and labels exact
            torch.testing.assert_close(out["scores"], ref["scores"], rtol=0, atol=1e-6, msg=where)
            torch.testing.assert_close(out["segments_grid"], ref["segments_grid"], rtol=0, atol=2e-4, msg=where)
            torch.testing.assert_close(out["segments_sec"], ref["segments_sec"], rtol=0, atol=2e-4, msg=where)


# --------------------------------------------------------------------------------------------
# The tail on hand-made candidates


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


def test_decoding_units_and_clamping() -> None:
    logits, offsets, points, valid = _toy_head_outputs()
    video = {"fps": 30.0, "duration": 1.0, "feat_stride": 4.0, "feat_num_frames": 16.0}
    fps, stride, frames, duration = 30.0, 4.0, 16.0, 1.0
    candidates = _actionformer_candidates(logits, offsets, points, valid)
    out = decode_video(*candidates, THUMOS_TEST_CFG, video)
    assert out["labels"].tolist() == [1, 2, 0]  # sorted by score; padded and too-short ones gone
    torch.testing.assert_close(out["scores"], torch.sigmoid(torch.tensor([2.0, 1.0, 0.5])))
    torch.testing.assert_close(out["segments_grid"], torch.tensor([[1.0, 3.0], [2.0, 10.0], [-2.0, 2.0]]))
    # sec = (grid * stride + frames / 2) / fps, clamped to [0, duration]: [1, 3] -> [12, 20] / 30;
    # [2, 10] -> [16, 48] / 30 (end clamped to 1 s); [-2, 2] -> [0, 16] / 30
    torch.testing.assert_close(out["segments_sec"], torch.tensor([[0.4, 2 / 3], [16 / 30, 1.0], [0.0, 16 / 30]]))
    assert out["segments_sec"][1, 1].item() == duration and out["segments_sec"][2, 0].item() == 0.0
    # seconds -> grid round trip where nothing was clamped
    torch.testing.assert_close(sec_to_grid(out["segments_sec"][0], fps, stride, frames), out["segments_grid"][0])
    nothing = decode_video(*_actionformer_candidates([x - 100 for x in logits], offsets, points, valid),
                           THUMOS_TEST_CFG, video)
    assert nothing["segments_sec"].shape == (0, 2) and nothing["labels"].shape == (0,)
    with pytest.raises(ValueError, match="nms_method"):
        decode_video(*candidates, {**THUMOS_TEST_CFG, "nms_method": "greedy"}, video)


def test_nms_method_none_keeps_level_order_uncapped() -> None:
    """As ActionFormer's and TriDet's postprocessing: no suppression, no re-sort, no max_seg_num cap;
    each level's candidates come out in decreasing score, levels in order."""
    logits, offsets, points, valid = _toy_head_outputs()
    logits[1][1, 1] = 4.0  # level 1 now holds the highest score of the video
    video = {"fps": 30.0, "duration": 100.0, "feat_stride": 4.0, "feat_num_frames": 16.0}
    candidates = _actionformer_candidates(logits, offsets, points, valid)
    raw = decode_video(*candidates, {**THUMOS_TEST_CFG, "nms_method": "none", "max_seg_num": 2}, video)
    assert raw["labels"].tolist() == [1, 1, 2, 0]  # level 0: class 1; level 1: classes 1, 2, 0 by score
    torch.testing.assert_close(raw["scores"], torch.sigmoid(torch.tensor([2.0, 4.0, 1.0, 0.5])))
    selected = select_candidates(*candidates, THUMOS_TEST_CFG["pre_nms_thresh"], THUMOS_TEST_CFG["pre_nms_topk"],
                                 THUMOS_TEST_CFG["duration_thresh"])
    assert torch.equal(raw["segments_grid"], selected[0]) and torch.equal(raw["scores"], selected[1])
    suppressed = decode_video(*candidates, {**THUMOS_TEST_CFG, "max_seg_num": 2}, video)
    # soft-NMS decays level 0's class-1 segment [1, 3] under level 1's [0, 4] (IoU 0.5), sorts by score
    # and caps at max_seg_num
    assert suppressed["labels"].tolist() == [1, 2]
    torch.testing.assert_close(suppressed["scores"], torch.sigmoid(torch.tensor([4.0, 1.0])))


def test_class_specific_segments_and_score_factors() -> None:
    logits = torch.tensor([[5.0, 5.0, -20.0], [0.0, 0.0, 0.0]])  # step 0: classes 0 and 1 above threshold
    offsets = torch.tensor([[[1.0, 1.0], [2.0, 3.0], [0.0, 0.0]], [[1.0, 1.0]] * 3])  # (T 2, K = C 3, 2)
    points = torch.tensor([[10.0, 0.0, 100.0, 2.0], [11.0, 0.0, 100.0, 2.0]])
    valid = torch.tensor([True, False])
    factors = torch.tensor([[0.5], [1.0]])  # (T, 1): one factor per point, for every class
    scores = level_scores(logits, valid, factors)
    torch.testing.assert_close(scores[0], torch.sigmoid(logits[0]) * 0.5)
    assert scores[1].tolist() == [0.0, 0.0, 0.0]  # invalid step
    segs, kept, labels = select_candidates([scores], [level_segments(offsets, points)], 0.001, 100, 0.05)
    assert labels.tolist() == [0, 1]
    assert segs.tolist() == [[8.0, 12.0], [6.0, 16.0]]  # each class's own offsets
    assert kept.tolist() == scores[0, :2].tolist()


def test_reduced_precision_outputs_decode_in_float32() -> None:
    logits, offsets, points, valid = _toy_head_outputs()
    half = _actionformer_candidates([x.bfloat16() for x in logits], [x.bfloat16() for x in offsets], points, valid)
    assert all(x.dtype == torch.float32 for x in half[0] + half[1])
    double = level_scores(logits[0].double(), valid[0])
    assert double.dtype == torch.float64


def test_shape_errors_name_what_is_wrong() -> None:
    logits, offsets, points, valid = _toy_head_outputs()
    with pytest.raises(ValueError, match="valid must be"):
        level_scores(logits[0], valid[1])
    with pytest.raises(ValueError, match="score_factors must be"):
        level_scores(logits[0], valid[0], torch.ones(8, 2))
    with pytest.raises(ValueError, match="expected offsets"):
        level_segments(offsets[0], points[0])  # (T, 2): the K axis is missing
    scores, segments = _actionformer_candidates(logits, offsets, points, valid)
    with pytest.raises(ValueError, match="levels differ"):
        select_candidates(scores, segments[:1], 0.001, 100, 0.05)
    with pytest.raises(ValueError, match="level 1: segments must be"):
        select_candidates(scores, [segments[0], segments[0]], 0.001, 100, 0.05)
