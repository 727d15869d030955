"""Every call site pads as the detector does: its forward, ``data.pad_videos`` and the feature probe.

Before the detector owned the padding policy, ``pad_videos`` and the probe padded 'minimal'
inference batches to a multiple of the pyramid's divisor while the detector padded less.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tal_lab.analysis.features import extract_features
from tal_lab.data import pad_videos
from tal_lab.models import build_detector
from tal_lab.models.padding import PaddingPolicy

from tiny import TRAIN_CFG, tiny_config

# max_seq_len 64, top stride 4, divisor 16: four short videos and one over-length video
LENGTHS = [9, 33, 20, 40, 100]
# (padded length, videos) at inference, per eval_padding
EXPECTED = {"reference": [(64, [0, 1, 2, 3]), (112, [4])], "minimal": [(44, [0, 1, 2, 3]), (112, [4])]}
EXPECTED_TRAIN = {"reference": 64, "minimal": 44}


def _videos(lengths: list[int]) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    return [{"video_id": f"v{i}", "feats": torch.randn(8, n, generator=gen), "segments": torch.tensor([[1.0, 6.0]]),
             "labels": torch.tensor([i % 3]), "fps": 25.0, "duration": n / 6.25, "feat_stride": 4,
             "feat_num_frames": 16} for i, n in enumerate(lengths)]


def _backbone_inputs(detector: nn.Module, videos: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(batch size, padded length) of every batch the backbone sees while the detector runs."""
    seen: list[tuple[int, int]] = []
    handle = detector.backbone.register_forward_pre_hook(lambda _m, args: seen.append((args[0].shape[0],
                                                                                       args[0].shape[-1])))
    try:
        with torch.no_grad():
            detector(videos)
    finally:
        handle.remove()
    return seen


class _BackboneAndNeck(nn.Module):
    """A detector the probe knows nothing about: no padding policy of its own."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.backbone, self.neck = detector.backbone, detector.neck


@pytest.mark.parametrize("padding", ["reference", "minimal"])
def test_every_call_site_pads_as_the_detector(padding: str) -> None:
    cfg = tiny_config(model={"eval_padding": padding, "train_padding": padding}, train_cfg=TRAIN_CFG)
    detector = build_detector(cfg).eval()
    videos = _videos(LENGTHS)
    groups = detector.padding.eval_groups(LENGTHS)
    assert groups == EXPECTED[padding]
    assert PaddingPolicy.from_config(cfg["model"]).eval_groups(LENGTHS) == groups

    assert _backbone_inputs(detector, videos) == [(len(indices), length) for length, indices in groups]
    feats = [v["feats"] for v in videos]
    for probed in (extract_features(detector, feats, layers=False),
                   extract_features(_BackboneAndNeck(detector), feats, cfg=cfg, layers=False)):
        assert [(capture.backbone[0].feats.shape[-1], indices) for indices, capture in probed] == groups
    for length, indices in groups:
        assert pad_videos([videos[i] for i in indices], cfg["model"], training=False)[0].shape[-1] == length
    with pytest.raises(ValueError, match="in 2 inference batches"):
        pad_videos(videos, cfg["model"], training=False)

    short = videos[:4]
    padded, mask = pad_videos(short, cfg["model"], training=True)
    assert padded.shape[-1] == detector.padding.train_length(LENGTHS[:4]) == EXPECTED_TRAIN[padding]
    assert _backbone_inputs(detector.train(), short) == [(4, padded.shape[-1])]
    assert mask.sum(-1).flatten().tolist() == LENGTHS[:4]
