"""The detector's padding policy: training and inference lengths under reference and minimal padding."""

from __future__ import annotations

import pytest

from tal_lab.config import apply_overrides, load_config, max_div_factor
from tal_lab.config.published import published_config
from tal_lab.models import build_detector
from tal_lab.models.padding import PaddingPolicy

from tiny import tiny_config

# max_seq_len 64, top stride 4, divisor 16 for over-length inference videos
REFERENCE = PaddingPolicy(max_seq_len=64, max_div_factor=16, top_stride=4)
MINIMAL = PaddingPolicy(64, 16, 4, eval_padding="minimal", train_padding="minimal")


def test_minimal_length_keeps_one_padded_top_step_up_to_max_seq_len() -> None:
    assert MINIMAL.minimal_length([9]) == 16  # 9 -> 12 (a multiple of 4) + one step of 4
    assert MINIMAL.minimal_length([17, 30]) == 36  # the longest need: 30 -> 32 + 4
    assert MINIMAL.minimal_length([20]) == 24 and MINIMAL.minimal_length([61, 64]) == 64  # capped


def test_training_pads_to_max_seq_len_or_minimal() -> None:
    assert REFERENCE.train_length([17, 30]) == 64 and MINIMAL.train_length([17, 30]) == 36
    for policy in (REFERENCE, MINIMAL):
        with pytest.raises(ValueError, match="65 feature steps, more than max_seq_len=64"):
            policy.train_length([10, 65])


def test_inference_groups_videos_by_padded_length() -> None:
    lengths = [40, 9, 100, 20, 130, 100]
    # reference: every short video at max_seq_len, longer ones at the next multiple of 16
    assert REFERENCE.eval_groups(lengths) == [(64, [0, 1, 3]), (112, [2, 5]), (144, [4])]
    # minimal: short videos share one batch at their longest need (40 -> 44); longer ones as the reference
    assert MINIMAL.eval_groups(lengths) == [(44, [0, 1, 3]), (112, [2, 5]), (144, [4])]
    assert MINIMAL.eval_groups([130, 9]) == [(16, [1]), (144, [0])]  # the short batch first
    assert MINIMAL.eval_groups([]) == []


def test_one_batch_length_or_an_error_naming_the_groups() -> None:
    assert MINIMAL.batch_length([40, 9], training=False) == 44
    assert MINIMAL.batch_length([40, 9], training=True) == 44
    assert REFERENCE.batch_length([100], training=False) == 112
    with pytest.raises(ValueError, match=r"lengths \[40, 100\] in 2 inference batches \(padded lengths \[64, 112\]\)"):
        REFERENCE.batch_length([40, 100], training=False)
    with pytest.raises(ValueError, match="cannot pad an empty batch"):
        REFERENCE.batch_length([], training=False)
    with pytest.raises(ValueError, match=r"model.eval_padding must be one of \('auto', 'reference', 'minimal'\)"):
        PaddingPolicy(64, 16, 4, eval_padding="none")


@pytest.mark.parametrize("backbone", ["convTransformer", "conv", "sgp", "maxpool"])
@pytest.mark.parametrize("padding", ["auto", "reference", "minimal"])
def test_the_config_gives_the_detectors_policy(backbone: str, padding: str) -> None:
    modes = {"eval_padding": padding, "train_padding": padding} if (backbone, padding) != ("sgp", "minimal") else {}
    cfg = tiny_config(model={"backbone_type": backbone, "fpn_type": "fpn", **modes})
    assert PaddingPolicy.from_config(cfg["model"]) == build_detector(cfg).padding


@pytest.mark.parametrize(("backbone", "abs_pe", "expected"), [
    ("convTransformer", False, "minimal"), ("convTransformer", True, "minimal"), ("conv", False, "minimal"),
    ("maxpool", False, "minimal"), ("maxpool", True, "reference"), ("sgp", False, "reference")])
def test_auto_is_minimal_exactly_where_the_backbone_is_padding_invariant(backbone: str, abs_pe: bool,
                                                                         expected: str) -> None:
    cfg = tiny_config(model={"backbone_type": backbone, "use_abs_pe": abs_pe})
    assert cfg["model"]["eval_padding"] == cfg["model"]["train_padding"] == "auto"  # the default
    detector = build_detector(cfg)
    assert detector.backbone.padding_invariant == (expected == "minimal")
    policy = detector.padding
    assert policy.eval_mode == policy.train_mode == expected
    # what it pads to: 'minimal' pads two short videos (max_seq_len 64 in the tiny config) to their need
    need = policy.minimal_length([9, 20])
    assert policy.train_length([9, 20]) == (need if expected == "minimal" else cfg["model"]["max_seq_len"])
    assert need < cfg["model"]["max_seq_len"]


def test_eval_pad_divisor_stride_x_sgp_window_or_attention_window() -> None:
    """model.eval_pad_divisor: TriDet pads an over-length inference video to a multiple of the
    largest stride x n_sgp_win_size, ActionFormer to its attention divisor (the top stride for SGP)."""
    tridet = load_config(published_config("anet", "tridet"))  # SGP, 6 levels, n_sgp_win_size 15, max_seq_len 768
    assert tridet["model"]["eval_pad_divisor"] == "sgp_window"
    policy = PaddingPolicy.from_config(tridet["model"])
    assert policy.max_div_factor == 32 * 15  # the top level's stride 32 x window 15
    assert policy.eval_groups([800, 500]) == [(960, [0]), (768, [1])]  # 800 -> 2 x 480; 500 -> max_seq_len
    actionformer = apply_overrides(tridet, {"model": {"eval_pad_divisor": "attention_window"}})
    assert PaddingPolicy.from_config(actionformer["model"]).eval_groups([800]) == [(800, [0])]  # 25 x 32
    verb = load_config(published_config("epic", "tridet"))  # n_sgp_win_size 5
    assert PaddingPolicy.from_config(verb["model"]).eval_groups([2500]) == [(2560, [0])]  # 16 x 160
    assert build_detector(tiny_config(model={"backbone_type": "sgp", "n_sgp_win_size": 3,
                                             "eval_pad_divisor": "sgp_window"})).max_div_factor == 4 * 3
    # TriDet's rule reads windows of 1 (THUMOS14) as no window: the top stride
    assert max_div_factor(load_config(published_config("thumos", "tridet"))["model"]) == 32
