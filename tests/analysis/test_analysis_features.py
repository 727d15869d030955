"""Feature-diversity probe: metrics on hand-built features, hooks on tiny detectors, run folders, plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import matplotlib.colors
import pytest
import torch

from tal_lab.analysis.feature_plots import (METRIC_LABELS, plot_cosine_to_mean, plot_diversity_by_layer,
                                            plot_diversity_by_level, plot_diversity_over_epochs,
                                            plot_diversity_overview)
from tal_lab.analysis.features import (SUMMARY_METRICS, DiversityResult, as_video_features, capture_features,
                                       cosine_to_mean, diversity_metrics, effective_rank, extract_features,
                                       find_backbone_blocks, mean_pairwise_cosine, probe_diversity,
                                       rank_collapse_ratio)
from tal_lab.analysis.run_models import load_run_detector, probe_run, run_checkpoints, run_labels
from tal_lab.config import load_config, paper_configuration
from tal_lab.models import build_detector

from fake_runs import write_checkpoint, write_run
from images import assert_figure_image
from tiny import PYRAMID, tiny_config

C_IN, T = PYRAMID["dataset"]["input_dim"], PYRAMID["dataset"]["max_seq_len"]  # 8, 32


def pyramid_config(name: str = "original", **model: object) -> dict:
    """Paper configuration ``name`` on the 4-level tiny pyramid (C_IN 8, T 32)."""
    cfg = tiny_config(PYRAMID, dataset_name="synthetic", model=model, engine={"eval_weights": "ema"})
    return paper_configuration(name, cfg)


def test_identical_steps_are_fully_collapsed() -> None:
    step = torch.randn(6, 1)
    feats = step.expand(6, 10).unsqueeze(0)  # (1, C, T): every step the same vector
    assert mean_pairwise_cosine(feats).item() == pytest.approx(1.0, abs=1e-12)
    assert effective_rank(feats).item() == pytest.approx(1.0, abs=1e-9)
    assert rank_collapse_ratio(feats).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(cosine_to_mean(feats), torch.ones(1, 10, dtype=torch.float64))


def test_orthogonal_steps_have_full_rank_and_zero_cosine() -> None:
    feats = (3.0 * torch.eye(8)[:, :5]).unsqueeze(0)  # 5 orthogonal steps of equal norm in C 8
    assert effective_rank(feats).item() == pytest.approx(5.0, abs=1e-9)
    assert mean_pairwise_cosine(feats).item() == pytest.approx(0.0, abs=1e-12)
    # the mean is (3/5) * sum of e_i: residual^2 = ||X||^2 - n |mu|^2 = 45 - 5 * 9/5 = 36
    assert rank_collapse_ratio(feats).item() == pytest.approx(math.sqrt(36 / 45), abs=1e-12)
    assert torch.allclose(cosine_to_mean(feats), torch.full((1, 5), 1 / math.sqrt(5), dtype=torch.float64))


def test_metrics_match_a_direct_computation_and_ignore_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 12)
    mask = torch.ones(2, 1, 12, dtype=torch.bool)
    mask[1, :, 7:] = False
    padded = x.clone()
    padded[1, :, 7:] = 1e3  # garbage on padded steps must not matter
    metrics = diversity_metrics(padded, mask)
    rows = x[1, :, :7].T.double()  # (n, C)
    unit = rows / rows.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    expected_cos = (sim.sum() - sim.diagonal().sum()) / (7 * 6)
    sing = torch.linalg.svdvals(rows)
    p = sing / sing.sum()
    expected_erank = torch.exp(-(p * p.log()).sum())
    expected_collapse = (rows - rows.mean(0)).norm() / rows.norm()
    assert metrics["steps"].tolist() == [12, 7]
    assert metrics["mean_cosine"][1].item() == pytest.approx(expected_cos.item(), abs=1e-10)
    assert metrics["effective_rank"][1].item() == pytest.approx(expected_erank.item(), abs=1e-9)
    assert metrics["effective_rank_ratio"][1].item() == pytest.approx(expected_erank.item() / 6, abs=1e-9)
    assert metrics["collapse_ratio"][1].item() == pytest.approx(expected_collapse.item(), abs=1e-10)
    assert torch.isnan(metrics["cos_to_mean"][1, 7:]).all() and not torch.isnan(metrics["cos_to_mean"][1, :7]).any()
    # the unpadded video equals its own metrics computed alone
    alone = diversity_metrics(x[:1], None)
    assert alone["effective_rank"].item() == pytest.approx(metrics["effective_rank"][0].item(), abs=1e-9)


def test_degenerate_maps_give_nan_not_errors() -> None:
    zeros = torch.zeros(1, 4, 6)
    assert math.isnan(effective_rank(zeros).item()) and math.isnan(rank_collapse_ratio(zeros).item())
    one_step = torch.zeros(1, 1, 6, dtype=torch.bool)
    one_step[..., 0] = True
    assert math.isnan(mean_pairwise_cosine(torch.randn(1, 4, 6), one_step).item())
    with pytest.raises(ValueError, match="mask of shape"):
        mean_pairwise_cosine(torch.randn(1, 4, 6), torch.ones(1, 1, 5, dtype=torch.bool))


@pytest.mark.parametrize("name", ["original", "A", "B", "D"])
def test_hooks_capture_levels_neck_and_blocks(name: str) -> None:
    torch.manual_seed(0)
    cfg = pyramid_config(name)
    detector = build_detector(cfg).eval()
    names = [n for n, _ in find_backbone_blocks(detector.backbone)]
    assert names == ["stem.0", "stem.1", "branch.0", "branch.1", "branch.2"]
    feats = torch.randn(2, C_IN, T)
    mask = torch.ones(2, 1, T, dtype=torch.bool)
    mask[1, :, 20:] = False
    with capture_features(detector) as captured, torch.no_grad():
        level_feats, level_masks = detector.backbone(feats, mask)
        neck_feats, _ = detector.neck(level_feats, level_masks)
    call = captured.last
    assert [tuple(fm.feats.shape) for fm in call.backbone] == [(2, 16, T >> lv) for lv in range(4)]
    assert [tuple(fm.mask.shape) for fm in call.neck] == [(2, 1, T >> lv) for lv in range(4)]
    assert torch.equal(call.neck[2].feats, neck_feats[2])
    assert list(call.layers) == names
    assert call.layer_levels() == {"stem.0": 0, "stem.1": 0, "branch.0": 1, "branch.1": 2, "branch.2": 3}
    assert call.layers["branch.0"].mask[1, 0].sum().item() == 10  # mask downsampled with the features
    # hooks are removed on exit
    assert not detector.backbone._forward_hooks and not detector.neck._forward_hooks


def test_hooks_see_a_full_detector_forward() -> None:
    cfg = pyramid_config("E")
    detector = build_detector(cfg).eval()
    video = {"video_id": "v", "feats": torch.randn(C_IN, 24), "fps": 30.0, "duration": 10.0,
             "feat_stride": 4, "feat_num_frames": 16}
    with capture_features(detector) as captured:
        detector([video])
    assert len(captured.calls) == 1 and captured.last.backbone[0].feats.shape == (1, 16, T)
    assert captured.last.backbone[0].mask[0, 0].sum().item() == 24


def test_probe_frames_and_padding_follow_the_detector() -> None:
    torch.manual_seed(1)
    cfg = pyramid_config("D")
    detector = build_detector(cfg)
    videos = [{"video_id": "a", "feats": torch.randn(C_IN, T)}, {"video_id": "b", "feats": torch.randn(C_IN, 20)}]
    result = probe_diversity(detector, videos, labels={"backbone": "sgp", "epoch": 3}, cfg=cfg, batch_size=1)
    s = result.summary
    assert len(s) == 2 * (4 + 4 + 5)
    assert set(SUMMARY_METRICS) <= set(s.columns) and (s["backbone"] == "sgp").all()
    assert s.loc[(s.video_id == "b") & (s.stage == "backbone"), "steps"].tolist() == [20, 10, 5, 3]
    assert s[list(SUMMARY_METRICS)].notna().all().all()
    assert s["mean_cosine"].between(-1, 1).all() and s["collapse_ratio"].between(0, 1).all()
    st = result.steps
    assert len(st) == 2 * (T + 16 + 8 + 4 + 20 + 10 + 5 + 3)
    assert st["cos_to_mean"].between(-1 - 1e-9, 1 + 1e-9).all()
    # the same video padded as at inference (max_seq_len) whichever batch it is in
    again = probe_diversity(detector, {"b": videos[1]["feats"]}, cfg=cfg)
    left = s[s.video_id == "b"].reset_index(drop=True)["effective_rank"]
    assert torch.allclose(torch.tensor(left.to_numpy()), torch.tensor(again.summary["effective_rank"].to_numpy()))
    assert detector.training  # the probe restores the module's mode
    with pytest.raises(ValueError, match="at least one video"):
        probe_diversity(detector, {})
    with pytest.raises(ValueError, match="'video_id' and 'feats'"):
        as_video_features([torch.zeros(2)])


BACKBONE_NAMES = ["convTransformer", "sgp"]


@pytest.fixture(scope="module")
def diversity() -> DiversityResult:
    """The probe of two backbones (original, E) at two epochs each, on videos of 32 and 24 steps."""
    torch.manual_seed(2)
    results = []
    for name, backbone in (("original", "convTransformer"), ("E", "sgp")):
        detector = build_detector(pyramid_config(name))
        for epoch in (1, 2):
            results.append(probe_diversity(detector, {"a": torch.randn(C_IN, T), "b": torch.randn(C_IN, 24)},
                                           labels={"backbone": backbone, "epoch": epoch}, padded_len=T))
    return DiversityResult.concat(results)


def _legend(ax) -> tuple[str, list[str]]:
    legend = ax.get_legend()
    return legend.get_title().get_text(), [t.get_text() for t in legend.get_texts()]


def test_by_level_plot_draws_the_mean_per_level_of_each_backbone(diversity: DiversityResult) -> None:
    fig = plot_diversity_by_level(diversity.summary)
    (ax,) = fig.axes
    assert ax.get_title() == "mean pairwise cosine per level" and ax.get_ylabel() == "mean pairwise cosine"
    assert ax.get_xlabel() == "pyramid level (backbone output)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]
    assert _legend(ax) == ("backbone", BACKBONE_NAMES) and len(ax.collections) == 2  # a +-1 std band per line
    backbone = diversity.summary[diversity.summary["stage"] == "backbone"]
    for line, name in zip(ax.lines, BACKBONE_NAMES):
        # the mean over both videos and both epochs of each level
        expected = backbone[backbone["backbone"] == name].groupby("level")["mean_cosine"].mean()
        assert line.get_label() == name and list(line.get_xdata()) == [0, 1, 2, 3]
        assert line.get_ydata() == pytest.approx(expected.to_numpy(), abs=1e-12)
    assert_figure_image(fig)
    with pytest.raises(ValueError, match="no rows for stage"):
        plot_diversity_by_level(diversity.summary, stage="nothing")
    with pytest.raises(ValueError, match="missing column"):
        plot_diversity_by_level(diversity.summary, metric="no_such_metric")


def test_overview_has_one_panel_per_metric(diversity: DiversityResult) -> None:
    fig = plot_diversity_overview(diversity.summary)
    assert fig.get_suptitle() == "Feature diversity per pyramid level (backbone outputs, valid steps only)"
    assert [ax.get_ylabel() for ax in fig.axes] == [METRIC_LABELS[m] for m in
                                                   ("mean_cosine", "effective_rank_ratio", "collapse_ratio")]
    assert all(ax.get_xlabel() == "pyramid level (backbone)" for ax in fig.axes)
    assert [[line.get_label() for line in ax.lines] for ax in fig.axes] == [BACKBONE_NAMES] * 3
    assert _legend(fig.axes[0]) == ("backbone", BACKBONE_NAMES) and fig.axes[1].get_legend() is None
    assert_figure_image(fig)


def test_by_layer_plot_labels_blocks_in_forward_order(diversity: DiversityResult) -> None:
    fig = plot_diversity_by_layer(diversity.summary)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "backbone block (forward order)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["stem.0", "stem.1", "branch.0", "branch.1", "branch.2"]
    assert [(line.get_label(), list(line.get_xdata())) for line in ax.lines] == [
        (name, [0, 1, 2, 3, 4]) for name in BACKBONE_NAMES]
    assert_figure_image(fig)


def test_over_epochs_plot_has_a_panel_per_level_asked_for(diversity: DiversityResult) -> None:
    fig = plot_diversity_over_epochs(diversity.summary, levels=[0, 2])
    assert fig.get_suptitle() == "mean pairwise cosine over training (backbone)"
    assert [(ax.get_title(), ax.get_xlabel()) for ax in fig.axes] == [("level 0", "epoch"), ("level 2", "epoch")]
    for ax in fig.axes:
        assert [(line.get_label(), list(line.get_xdata())) for line in ax.lines] == [
            (name, [1, 2]) for name in BACKBONE_NAMES]
    assert_figure_image(fig)


def test_cosine_to_mean_draws_a_box_per_level_and_backbone(diversity: DiversityResult) -> None:
    fig = plot_cosine_to_mean(diversity.steps, stage="neck")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "pyramid level (neck output)" and ax.get_ylabel() == "cosine to temporal mean"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]
    assert _legend(ax) == ("backbone", BACKBONE_NAMES)
    boxes = ax.patches  # patch_artist boxes: the first backbone's 4 levels, then the second's
    assert len(boxes) == 8
    centres = [float(box.get_path().vertices[:, 0].min() + box.get_path().vertices[:, 0].max()) / 2 for box in boxes]
    # two groups of boxes, 0.8 wide per level: offsets -0.2 and +0.2 around each level
    assert centres == pytest.approx([-0.2, 0.8, 1.8, 2.8, 0.2, 1.2, 2.2, 3.2], abs=1e-9)
    assert [matplotlib.colors.to_hex(box.get_facecolor(), keep_alpha=False) for box in boxes] == (
        [matplotlib.colors.to_hex("C0")] * 4 + [matplotlib.colors.to_hex("C1")] * 4)
    assert_figure_image(fig)


def _weights(cfg: dict, seed: int) -> dict[str, torch.Tensor]:
    """The untrained weights of the detector of ``cfg`` at ``seed``: checkpoints without training."""
    torch.manual_seed(seed)
    return build_detector(cfg).state_dict()


def _assert_weights(detector: torch.nn.Module, expected: Mapping[str, torch.Tensor]) -> None:
    state = detector.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state), "the detector holds other weights"


def test_run_checkpoints_load_and_probe(tmp_path: Path) -> None:
    # 2 epochs after 1 warm-up epoch, evaluated at epoch 1; run.json from before heads were recorded
    cfg = load_config({**pyramid_config("E"), "init_rand_seed": 7, "opt": {"epochs": 2, "warmup_epochs": 1}})
    run = write_run(tmp_path, "run-a", cfg, maps=[0.5] * 5, head_type=None)
    for epoch in (1, 3):
        write_checkpoint(run, epoch, _weights(cfg, epoch), ema_state_dict=_weights(cfg, 10 + epoch))
    assert run_checkpoints(run) == {1: run / "checkpoints" / "epoch_001.pt", 3: run / "checkpoints" / "last.pt"}
    assert run_labels({"path": str(run)})["head"] == "actionformer"
    detector, loaded_cfg = load_run_detector(run, epoch=1)
    _assert_weights(detector, _weights(cfg, 11))  # the EMA weights, as the run evaluated them
    assert loaded_cfg["model"]["backbone_type"] == "sgp" and not detector.training
    _assert_weights(load_run_detector(run)[0], _weights(cfg, 13))  # default: the last checkpoint
    _assert_weights(load_run_detector(run, epoch=3, weights="model")[0], _weights(cfg, 3))
    with pytest.raises(ValueError, match=r"available: \[1, 3\]"):
        load_run_detector(run, epoch=2)
    result = probe_run(run, {"a": torch.randn(C_IN, T)}, epochs="all", layers=False)
    assert sorted(result.summary["epoch"].unique()) == [1, 3]
    assert set(result.summary["stage"]) == {"backbone", "neck"}
    assert (result.summary["run"] == "run-a").all() and (result.summary["seed"] == 7).all()


def test_runs_without_ema_fall_back_to_raw_weights(tmp_path: Path) -> None:
    cfg = load_config({**pyramid_config("B"), "opt": {"epochs": 2, "warmup_epochs": 0}})
    assert cfg["engine"]["eval_weights"] == "ema"  # what the run asks for, but its checkpoint has none
    run = write_run(tmp_path, "run-b", cfg, maps=[0.5] * 5)
    write_checkpoint(run, 2, _weights(cfg, 2))
    detector, _ = load_run_detector(run)
    _assert_weights(detector, _weights(cfg, 2))
    with pytest.raises(ValueError, match="has no state_dict_ema"):
        load_run_detector(run, weights="ema")  # EMA asked for by name: no fallback
    with pytest.raises(ValueError, match="not a tal_lab run folder"):
        run_checkpoints(tmp_path)


@pytest.mark.parametrize(("padding", "short_length"), [("reference", T), ("auto", 24)])
def test_extract_features_groups_by_padded_length(padding: str, short_length: int) -> None:
    cfg = pyramid_config("original", eval_padding=padding)
    detector = build_detector(cfg)
    long_video = torch.randn(C_IN, T + 8)  # longer than max_seq_len: padded to the divisor, own batch
    groups = extract_features(detector, [torch.randn(C_IN, 10), long_video], cfg=cfg, layers=False)
    assert [g[0] for g in groups] == [[0], [1]]
    # the short video: to max_seq_len (reference), or to its need 10 -> 16 + one step of the top stride 8 (auto)
    assert groups[0][1].backbone[0].feats.shape[-1] == short_length
    assert groups[1][1].backbone[0].feats.shape[-1] % 8 == 0 and groups[1][1].backbone[0].feats.shape[-1] > T
