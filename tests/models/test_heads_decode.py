"""Every head decodes through the one tail of tal_lab.ops.decode: the same candidates give the same
detections, in the same order, whichever head supplies them (nms_method 'none' included)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tal_lab.models.heads.actionformer import ActionFormerHead
from tal_lab.models.heads.decoupled import DecoupledHead
from tal_lab.models.heads.trident import TridentHead

NUM_CLASSES = 3
TEST_CFG = {"pre_nms_thresh": 0.001, "pre_nms_topk": 100, "duration_thresh": 0.05, "iou_threshold": 0.1,
            "min_score": 0.001, "max_seg_num": 100, "multiclass_nms": True, "nms_sigma": 0.5, "voting_thresh": 0.7}
VIDEO = {"fps": 25.0, "duration": 20.0, "feat_stride": 4, "feat_num_frames": 16}


def _level_outputs() -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """One video, two levels (strides 1, 2): logits (1, T_l, C), shared offsets (1, T_l, 2), points,
    validity; level 1 holds the video's highest score, so level order is not score order."""
    logits = [torch.full((1, 8, NUM_CLASSES), -10.0), torch.full((1, 4, NUM_CLASSES), -10.0)]
    logits[0][0, 2, 1], logits[0][0, 5, 0] = 2.0, 1.5
    logits[1][0, 1, 1], logits[1][0, 2, 2] = 4.0, 1.0
    offsets = [torch.full((1, 8, 2), 1.0), torch.full((1, 4, 2), 1.5)]
    points = [torch.stack([torch.arange(8.0), torch.zeros(8), torch.full((8,), 4.0), torch.ones(8)], 1),
              torch.stack([torch.arange(0.0, 8.0, 2.0), torch.full((4,), 4.0), torch.full((4,), 1e4),
                           torch.full((4,), 2.0)], 1)]
    valid = [torch.ones(1, 8, dtype=torch.bool), torch.arange(4)[None] < 3]
    return logits, offsets, points, valid


def _detections(head_type: str, test_cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    logits, offsets, points, valid = _level_outputs()
    if head_type == "actionformer":
        head: Any = ActionFormerHead(8, 8, NUM_CLASSES, num_levels=2)
        outputs = {"cls_logits": logits, "reg_offsets": offsets}
    elif head_type == "trident":  # class-specific boundaries, here equal for every class
        head = TridentHead(8, 8, NUM_CLASSES, num_levels=2, num_bins=4)
        class_offsets = [x[:, :, None].expand(-1, -1, NUM_CLASSES, -1) for x in offsets]  # (1, T_l, C, 2)
        outputs = {"cls_logits": logits, "reg_offsets": class_offsets}
    else:  # class-agnostic boundaries, fully confident: re-scoring by 1
        head = DecoupledHead(8, 8, NUM_CLASSES, num_levels=2, num_bins=4, uncertainty="none")
        outputs = {"cls_logits": logits, "reg_offsets": [x[:, :, None] for x in offsets],
                   "confidence": [torch.ones_like(x[:, :, None]) for x in offsets]}
    return head.predict(outputs, points, valid, 0, VIDEO, test_cfg)


@pytest.mark.parametrize("nms_method", ["none", "soft", "hard"])
def test_every_head_gives_the_same_detections_in_the_same_order(nms_method: str) -> None:
    cfg = {**TEST_CFG, "nms_method": nms_method}
    reference = _detections("actionformer", cfg)
    for head_type in ("trident", "decoupled"):
        out = _detections(head_type, cfg)
        for key in ("labels", "scores", "segments_grid", "segments_sec"):
            assert torch.equal(out[key], reference[key]), f"{head_type} {nms_method}: {key}"
    if nms_method == "none":  # ActionFormer's and TriDet's order: levels in order, each by score
        assert reference["labels"].tolist() == [1, 0, 1, 2]
        torch.testing.assert_close(reference["scores"], torch.sigmoid(torch.tensor([2.0, 1.5, 4.0, 1.0])))
    else:
        assert bool((reference["scores"][:-1] >= reference["scores"][1:]).all())
