"""The official recipes of ActionFormer (commit 61ea7eb) and TriDet (commit 764b816), as plain config data.

Each entry holds what that repository's ``configs/<name>.yaml`` sets, value for value (written
as Python data, with ``recipe`` naming its dialect), so that :func:`tal_lab.config.load_config`
of an entry gives the same config as loading the YAML itself (``tests/config/test_published.py``
checks every entry against ``official_merged_configs.json``). Paths (``dataset.json_file``,
``dataset.feat_folder``, ``test_cfg.ext_score_file``, ``output_folder``) are the repositories'
own relative ones: a caller points them at its data. :func:`published_config` gives a dataset's
recipe in the variant its repository's README reproduces (:data:`DATASET_VARIANTS`); they serve
datasets that arrive without a config (the notebooks), the synthetic benchmark (THUMOS14's
settings at smaller sizes) and the benchmarks.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from tal_lab.config.dialects import ACTIONFORMER, RECIPES, TRIDET
from tal_lab.config.frozen import freeze, thaw

__all__ = ["THUMOS_I3D", "ANET_TSP", "EPIC_SLOWFAST", "PUBLISHED", "DATASET_VARIANTS", "published_config"]

_TRAIN_SPLITS = {"train_split": ["training"], "val_split": ["validation"]}
_CENTER_SAMPLING = {"cls_prior_prob": 0.01, "center_sample": "radius", "center_sample_radius": 1.5}
_RANGES_6 = [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
_RANGES_6_OVERLAPPING = [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 10000]]
_ANET_SCORES = "./data/anet_1.3/annotations/cuhk_val_simp_share.json"


def _variant(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each section of ``changes`` updating the section of that name."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key].update(copy.deepcopy(dict(value)))
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------- ActionFormer (61ea7eb)
_THUMOS_I3D: dict[str, Any] = {
    "recipe": ACTIONFORMER, "dataset_name": "thumos", "train_split": ["validation"], "val_split": ["test"],
    "dataset": {"json_file": "./data/thumos/annotations/thumos14.json", "feat_folder": "./data/thumos/i3d_features",
                "file_prefix": None, "file_ext": ".npy", "num_classes": 20, "input_dim": 2048, "feat_stride": 4,
                "num_frames": 16, "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0], "max_seq_len": 2304},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 6.0, "n_mha_win_size": 19},
    "opt": {"learning_rate": 0.0001, "epochs": 30, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 100, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING},
    "test_cfg": {"voting_thresh": 0.7, "pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001,
                 "multiclass_nms": True},
    "output_folder": "./ckpt/",
}
_ANET_TSP: dict[str, Any] = {
    "recipe": ACTIONFORMER, "dataset_name": "anet", **_TRAIN_SPLITS,
    "dataset": {"json_file": "./data/anet_1.3/annotations/anet1.3_tsp_filtered.json",
                "feat_folder": "./data/anet_1.3/tsp_features", "file_prefix": "v_", "file_ext": ".npy",
                "num_classes": 1, "input_dim": 512, "feat_stride": 16, "num_frames": 16, "default_fps": 15,
                "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0], "max_seq_len": 192, "force_upsampling": True},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 1.0, "n_mha_win_size": [7, 7, 7, 7, 7, -1],
              "n_head": 4, "embd_dim": 256, "fpn_dim": 256, "head_dim": 256, "use_abs_pe": True},
    "opt": {"learning_rate": 0.001, "epochs": 10, "weight_decay": 0.05},
    "loader": {"batch_size": 16},
    "train_cfg": {"init_loss_norm": 200, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING, "label_smoothing": 0.1,
                  "droppath": 0.1, "loss_weight": 2.0},
    "test_cfg": {"voting_thresh": 0.9, "pre_nms_topk": 2000, "max_seg_num": 100, "min_score": 0.001,
                 "multiclass_nms": False, "nms_sigma": 0.75, "ext_score_file": _ANET_SCORES,
                 "duration_thresh": 0.001},
    "output_folder": "./ckpt/",
}
_EPIC_SLOWFAST: dict[str, Any] = {
    "recipe": ACTIONFORMER, "dataset_name": "epic", **_TRAIN_SPLITS,
    "dataset": {"json_file": "./data/epic_kitchens/annotations/epic_kitchens_100_verb.json",
                "feat_folder": "./data/epic_kitchens/features", "file_prefix": None, "file_ext": ".npz",
                "num_classes": 97, "input_dim": 2304, "feat_stride": 16, "num_frames": 32, "default_fps": 30,
                "trunc_thresh": 0.3, "crop_ratio": [0.9, 1.0], "max_seq_len": 2304},
    "model": {"regression_range": _RANGES_6_OVERLAPPING, "fpn_type": "identity", "max_buffer_len_factor": 4.0,
              "n_mha_win_size": 9},
    "opt": {"learning_rate": 0.0001, "epochs": 16, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 250, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING},
    "test_cfg": {"pre_nms_topk": 5000, "max_seg_num": 2000, "min_score": 0.001, "nms_sigma": 0.4,
                 "multiclass_nms": True},
    "output_folder": "./ckpt/",
}
_EGO4D_FEATURES = "./data/ego4d/{}_features"
_EGO4D_RANGES_8 = [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 128], [64, 256], [128, 10000]]
_EGO4D_SLOWFAST: dict[str, Any] = {
    "recipe": ACTIONFORMER, "dataset_name": "ego4d", **_TRAIN_SPLITS,
    "dataset": {"json_file": "./data/ego4d/annotations/ego4d.json", "feat_folder": _EGO4D_FEATURES.format("slowfast"),
                "file_prefix": None, "file_ext": ".npy", "num_classes": 110, "input_dim": 2304, "feat_stride": 16,
                "num_frames": 32, "default_fps": 30, "trunc_thresh": 0.3, "crop_ratio": [0.9, 1.0],
                "max_seq_len": 1024},
    "model": {"regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 128], [64, 10000]],
              "fpn_type": "identity", "backbone_arch": [2, 2, 6], "max_buffer_len_factor": 4.0,
              "n_mha_win_size": 9, "use_abs_pe": True},
    "opt": {"learning_rate": 0.0001, "epochs": 10, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 100, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING, "dropout": 0.1,
                  "droppath": 0.1},
    "test_cfg": {"pre_nms_topk": 5000, "max_seg_num": 2000, "min_score": 0.001, "nms_sigma": 0.9,
                 "multiclass_nms": True, "voting_thresh": 0.95},
    "output_folder": "./ckpt/",
}


def _ego4d(features: list[str], input_dim: int | list[int], num_frames: int, **model: Any) -> dict[str, Any]:
    """An Ego4D variant: the SlowFast recipe with 8 levels, these feature folders and model sizes."""
    folders = [_EGO4D_FEATURES.format(name) for name in features]
    return _variant(_EGO4D_SLOWFAST, {
        "dataset": {"feat_folder": folders[0] if len(folders) == 1 else folders, "input_dim": input_dim,
                    "num_frames": num_frames},
        "model": {"regression_range": _EGO4D_RANGES_8, "backbone_arch": [2, 2, 7], **model}})


_ACTIONFORMER: dict[str, dict[str, Any]] = {
    "thumos_i3d": _THUMOS_I3D,
    "anet_tsp": _ANET_TSP,
    "anet_i3d": _variant(_ANET_TSP, {"dataset": {
        "json_file": "./data/anet_1.3/annotations/anet1.3_i3d_filtered.json",
        "feat_folder": "./data/anet_1.3/i3d_features", "input_dim": 2048, "default_fps": 25}}),
    "epic_slowfast_verb": _EPIC_SLOWFAST,
    "epic_slowfast_noun": _variant(_EPIC_SLOWFAST, {
        "dataset": {"json_file": "./data/epic_kitchens/annotations/epic_kitchens_100_noun.json", "num_classes": 300},
        "train_cfg": {"label_smoothing": 0.1}}),
    "ego4d_slowfast": _EGO4D_SLOWFAST,
    "ego4d_egovlp": _ego4d(["egovlp"], 256, 16, embd_dim=384, fpn_dim=384, head_dim=384),
    "ego4d_omnivore": _ego4d(["omnivore"], 1536, 32),
    "ego4d_omnivore_egovlp": _ego4d(["omnivore", "egovlp"], 1792, 32, n_head=12, embd_dim=768, fpn_dim=768,
                                    head_dim=768),
    "ego4d_slowfast_egovlp": _ego4d(["slowfast", "egovlp"], 2560, 32, n_head=12, embd_dim=768, fpn_dim=768,
                                    head_dim=768),
    "ego4d_slowfast_omnivore_egovlp": _ego4d(["slowfast", "omnivore", "egovlp"], [2304, 1536, 256], 32, n_head=16,
                                             embd_dim=[256, 384, 384], fpn_dim=1024, head_dim=1024),
}

# ---------------------------------------------------------------- TriDet (764b816)
_TRIDET_EPIC: dict[str, Any] = {
    "recipe": TRIDET, "dataset_name": "epic", **_TRAIN_SPLITS,
    "dataset": dict(_EPIC_SLOWFAST["dataset"]),
    "model": {"regression_range": _RANGES_6_OVERLAPPING, "fpn_type": "identity", "max_buffer_len_factor": 4.0},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 250, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING},
    "test_cfg": dict(_EPIC_SLOWFAST["test_cfg"]),
    "output_folder": "./ckpt/",
}
_HACS: dict[str, Any] = {
    "recipe": TRIDET, "dataset_name": "hacs", **_TRAIN_SPLITS,
    "loader": {"batch_size": 16},
    "test_cfg": {"voting_thresh": 0.95, "pre_nms_topk": 2000, "max_seg_num": 250, "min_score": 0.001,
                 "multiclass_nms": True, "nms_sigma": 0.75},
    "output_folder": "./ckpt/",
}
_HACS_MODEL: dict[str, Any] = {"fpn_type": "identity", "max_buffer_len_factor": 1.0}
_HACS_HEADS: dict[str, Any] = {"embd_dim": 1024, "sgp_mlp_dim": 1024, "fpn_dim": 1024, "head_dim": 1024,
                               "head_kernel_size": 5, "boudary_kernel_size": 1, "use_abs_pe": True}

_TRIDET: dict[str, dict[str, Any]] = {
    "thumos_i3d": {
        **{k: v for k, v in _THUMOS_I3D.items() if k not in ("model", "opt", "test_cfg")}, "recipe": TRIDET,
        "model": {"fpn_type": "identity", "max_buffer_len_factor": 6.0, "backbone_arch": [2, 2, 5],
                  "n_sgp_win_size": 1, "regression_range": _RANGES_6, "num_bins": 16, "k": 5,
                  "iou_weight_power": 0.2, "use_trident_head": True, "sgp_mlp_dim": 768, "input_noise": 0.0005},
        "opt": {"learning_rate": 0.0001, "warmup_epochs": 20, "epochs": 20, "weight_decay": 0.025},
        "test_cfg": {"voting_thresh": 0.7, "pre_nms_topk": 2000, "max_seg_num": 2000, "min_score": 0.001,
                     "multiclass_nms": True},
    },
    "anet_tsp": {
        "recipe": TRIDET, "dataset_name": "anet", **_TRAIN_SPLITS,
        "dataset": {k: v for k, v in _ANET_TSP["dataset"].items() if k != "force_upsampling"} | {"max_seq_len": 768},
        "model": {"fpn_type": "identity", "max_buffer_len_factor": 1.0, "backbone_arch": [2, 2, 5],
                  "n_sgp_win_size": 15, "regression_range": _RANGES_6, "embd_dim": 256, "sgp_mlp_dim": 2048,
                  "fpn_dim": 256, "head_dim": 512, "use_abs_pe": True, "num_bins": 12, "iou_weight_power": 1,
                  "input_noise": 0.5, "k": 1.3, "init_conv_vars": 0.2},
        "opt": {"learning_rate": 0.001, "eta_min": 0.00005, "warmup_epochs": 10, "epochs": 5, "weight_decay": 0.04},
        "loader": {"batch_size": 16},
        "train_cfg": {"init_loss_norm": 400, "clip_grad_l2norm": 0.4, **_CENTER_SAMPLING, "label_smoothing": 0.1},
        "test_cfg": {"voting_thresh": 0.95, "pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001,
                     "multiclass_nms": False, "nms_sigma": 0.70, "ext_score_file": _ANET_SCORES,
                     "duration_thresh": 0.1},
        "output_folder": "./ckpt/",
    },
    "epic_slowfast_verb": _variant(_TRIDET_EPIC, {
        "model": {"n_sgp_win_size": 5, "num_bins": 16, "iou_weight_power": 0.25, "sgp_mlp_dim": 1024, "k": 2},
        "opt": {"learning_rate": 0.0001, "eta_min": 0.00005, "warmup_epochs": 5, "epochs": 22, "weight_decay": 0.05}}),
    "epic_slowfast_noun": _variant(_TRIDET_EPIC, {
        "dataset": {"json_file": "./data/epic_kitchens/annotations/epic_kitchens_100_noun.json", "num_classes": 300},
        "model": {"n_sgp_win_size": 1, "num_bins": 16, "iou_weight_power": 0.25, "sgp_mlp_dim": 1024, "k": 4},
        "opt": {"learning_rate": 0.0001, "warmup_epochs": 5, "epochs": 14, "weight_decay": 0.05},
        "train_cfg": {"label_smoothing": 0.1}}),
    "hacs_i3d": _variant(_HACS, {
        "dataset": {"json_file": "./data/hacs/annotations/HACS_segments_v1.1.1.json",
                    "feat_folder": "./data/hacs/i3d_feature", "file_ext": ".npy", "num_classes": 200,
                    "input_dim": 2048, "feat_stride": 1, "num_frames": 1, "default_fps": 2, "trunc_thresh": 0.5,
                    "crop_ratio": [0.9, 1.0], "max_seq_len": 512, "backbone_type": "i3d"},
        "model": {**_HACS_MODEL, "backbone_arch": [2, 2, 6], "n_sgp_win_size": 15,
                  "regression_range": [*_RANGES_6[:5], [64, 128], [128, 10000]], **_HACS_HEADS, "num_bins": 12,
                  "iou_weight_power": 1, "input_noise": 0.0, "k": 1.2, "init_conv_vars": 0.1},
        "opt": {"learning_rate": 0.001, "eta_min": 0.0002, "warmup_epochs": 10, "epochs": 3, "weight_decay": 0.03},
        "train_cfg": {"init_loss_norm": 400, "clip_grad_l2norm": 1.0, **_CENTER_SAMPLING, "label_smoothing": 0.1}}),
    "hacs_slowfast": _variant(_HACS, {
        "dataset": {"json_file": "./data/hacs/annotations/HACS_segments_v1.1.1_slowfast.json",
                    "feat_folder": "./data/hacs/slowfast_feature", "file_ext": ".pkl", "num_classes": 200,
                    "input_dim": 2304, "feat_stride": 8, "num_frames": 32, "default_fps": 15, "trunc_thresh": 0.5,
                    "crop_ratio": [0.9, 1.0], "max_seq_len": 960, "backbone_type": "slowfast"},
        "model": {**_HACS_MODEL, "backbone_arch": [2, 2, 5], "n_sgp_win_size": 3, "regression_range": _RANGES_6,
                  **_HACS_HEADS, "num_bins": 14, "iou_weight_power": 1, "input_noise": 0.2,
                  "use_trident_head": True, "k": 1.2, "init_conv_vars": 0.1},
        "opt": {"learning_rate": 0.001, "eta_min": 0.0005, "warmup_epochs": 7, "epochs": 4, "weight_decay": 0.03},
        "train_cfg": {"init_loss_norm": 400, "clip_grad_l2norm": 0.5, **_CENTER_SAMPLING, "label_smoothing": 0.1}}),
}

# recipe -> official YAML name (without .yaml) -> its settings (frozen: published_config gives copies).
PUBLISHED: Mapping[str, Mapping[str, Mapping[str, Any]]] = freeze({ACTIONFORMER: _ACTIONFORMER, TRIDET: _TRIDET})
THUMOS_I3D, ANET_TSP, EPIC_SLOWFAST = (PUBLISHED[ACTIONFORMER][name]
                                       for name in ("thumos_i3d", "anet_tsp", "epic_slowfast_verb"))

# The variant published_config gives for each dataset: the one each repository's README reproduces.
DATASET_VARIANTS: Mapping[str, Mapping[str, str]] = {
    ACTIONFORMER: {"thumos": "thumos_i3d", "anet": "anet_tsp", "epic": "epic_slowfast_verb",
                   "ego4d": "ego4d_omnivore_egovlp"},
    TRIDET: {"thumos": "thumos_i3d", "anet": "anet_tsp", "epic": "epic_slowfast_verb", "hacs": "hacs_slowfast"},
}
_REPOSITORY = {ACTIONFORMER: "ActionFormer", TRIDET: "TriDet"}


def published_config(dataset_name: str, recipe: str = ACTIONFORMER, variant: str | None = None) -> dict[str, Any]:
    """A fresh copy of the official recipe for ``dataset_name`` ('thumos', 'anet', 'epic', 'ego4d'
    for ActionFormer; 'thumos', 'anet', 'epic', 'hacs' for TriDet).

    Args:
        recipe: 'actionformer' or 'tridet'.
        variant: an official YAML name of that repository (e.g. 'epic_slowfast_noun'); by default
            the dataset's entry of :data:`DATASET_VARIANTS`.

    Raises:
        ValueError: an unknown recipe, a dataset without published settings, or a variant that
            is not the repository's or not the dataset's.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe {recipe!r} is not one of {RECIPES}")
    defaults, repository = DATASET_VARIANTS[recipe], _REPOSITORY[recipe]
    if dataset_name not in defaults:
        raise ValueError(f"no published {repository} settings for dataset {dataset_name!r}; known: {sorted(defaults)}")
    name = variant or defaults[dataset_name]
    if name not in PUBLISHED[recipe]:
        raise ValueError(f"{repository} has no official config {name!r}; known: {sorted(PUBLISHED[recipe])}")
    if PUBLISHED[recipe][name]["dataset_name"] != dataset_name:
        raise ValueError(f"{repository}'s {name!r} is a {PUBLISHED[recipe][name]['dataset_name']!r} recipe, "
                         f"not {dataset_name!r}")
    return thaw(PUBLISHED[recipe][name])
