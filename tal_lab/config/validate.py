"""Validation of a merged config, one function per section; each error names the dotted key.

Runs on the merged plain config after the reference's sentinels became explicit values
(:mod:`tal_lab.config.sentinels`); component names are checked against the registries of
:mod:`tal_lab.core.registry`, the one list of backbone, neck and head names.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from tal_lab.config.defaults import DATASET_NAMES, PADDING_MODES
from tal_lab.config.errors import ConfigError
from tal_lab.config.dialects import RECIPE_OPTIONS, RECIPES
from tal_lab.config.geometry import attention_div_factor, sgp_div_factor
from tal_lab.config.sentinels import ADAPTIVE_LOSS_WEIGHT, GLOBAL_ATTENTION
from tal_lab.core.registry import BACKBONES, HEADS, NECKS, Registry

__all__ = ["validate_config", "HACS_FEATURE_TYPES"]

# dataset.backbone_type: the feature types TriDet's HACS dataset reads (tal_lab.data.hacs).
HACS_FEATURE_TYPES = ("i3d", "slowfast", "tsp")


def _require(cond: bool, key: str, problem: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}': {problem}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _in_range(value: Any, low: float, high: float) -> bool:
    return _is_number(value) and low <= value <= high


def _choice(section: Mapping[str, Any], key: str, prefix: str, choices: tuple[str, ...]) -> None:
    _require(section[key] in choices, f"{prefix}.{key}", f"{section[key]!r} is not one of {choices}")


def _positive_ints(section: Mapping[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    for key in keys:
        _require(_is_int(section[key]) and section[key] > 0, f"{prefix}.{key}",
                 f"must be a positive integer, got {section[key]!r}")


def _top_level(cfg: Mapping[str, Any]) -> None:
    _require(cfg["dataset_name"] in DATASET_NAMES, "dataset_name",
             f"{cfg['dataset_name']!r} is not one of {DATASET_NAMES}")
    for key in ("train_split", "val_split", "devices"):
        _require(isinstance(cfg[key], list) and all(isinstance(v, str) for v in cfg[key]), key,
                 f"must be a name or a list of names, got {cfg[key]!r}")


def _input_dim(ds: Mapping[str, Any]) -> None:
    """A positive int, or (Ego4D's concatenated feature folders) one per folder of dataset.feat_folder."""
    dims, folders = ds["input_dim"], ds["feat_folder"]
    if not isinstance(dims, list):
        _positive_ints(ds, ("input_dim",), "dataset")
        return
    _require(all(_is_int(d) and d > 0 for d in dims), "dataset.input_dim",
             f"must be a positive integer or a list of them, got {dims!r}")
    _require(isinstance(folders, list) and len(folders) == len(dims), "dataset.input_dim",
             f"lists the channels of {len(dims)} feature folders, so dataset.feat_folder must list as many, "
             f"got {folders!r}")


def _recipe(cfg: Mapping[str, Any]) -> None:
    _require(cfg["recipe"] in RECIPES, "recipe", f"{cfg['recipe']!r} is not one of {RECIPES}")
    for option in RECIPE_OPTIONS:
        section, name = option.key.split(".")
        value = cfg[section][name]
        _require(value in option.choices, option.key, f"{value!r} is not one of {option.choices} ({option.meaning})")


def _dataset(ds: Mapping[str, Any], name: str) -> None:
    _input_dim(ds)
    _positive_ints(ds, ("num_classes", "max_seq_len", "downsample_rate"), "dataset")
    for key in ("feat_stride", "num_frames"):
        _require(_is_number(ds[key]) and ds[key] > 0, f"dataset.{key}", f"must be positive, got {ds[key]!r}")
    _require(ds["default_fps"] is None or (_is_number(ds["default_fps"]) and ds["default_fps"] > 0),
             "dataset.default_fps", f"must be null or positive, got {ds['default_fps']!r}")
    _require(_in_range(ds["trunc_thresh"], 0.0, 1.0), "dataset.trunc_thresh",
             f"must lie in [0, 1], got {ds['trunc_thresh']!r}")
    crop = ds["crop_ratio"]
    _require(crop is None or (isinstance(crop, list) and len(crop) == 2 and all(_is_number(c) for c in crop)
                              and 0 < crop[0] <= crop[1] <= 1),
             "dataset.crop_ratio", f"must be null or [low, high] with 0 < low <= high <= 1, got {crop!r}")
    _choice(ds, "paths_relative_to", "dataset", ("cwd", "config"))
    _choice(ds, "eval_label_space", "dataset", ("corrected", "official"))
    if name == "hacs" or ds["backbone_type"] is not None:
        _require(ds["backbone_type"] in HACS_FEATURE_TYPES, "dataset.backbone_type",
                 f"{ds['backbone_type']!r} is not one of {HACS_FEATURE_TYPES} (TriDet's HACS feature types; "
                 "dataset_name hacs needs one)")
    syn = ds["synthetic"]
    # The preset only names the generated data (run names read it); the generator
    # (tal_lab.data.synthetic_spec.SYNTHETIC_PRESETS) owns the list of presets.
    _require(isinstance(syn["preset"], str) and syn["preset"] != "", "dataset.synthetic.preset",
             f"must name the generator's preset, got {syn['preset']!r}")
    _require(_is_int(syn["seed"]), "dataset.synthetic.seed", "must be an integer")
    _require(isinstance(syn["knobs"], dict), "dataset.synthetic.knobs", "must be a mapping")


def _registered(model: Mapping[str, Any], key: str, registry: Registry[Any]) -> None:
    _require(model[key] in registry, f"model.{key}",
             f"{model[key]!r} is not a registered {registry.kind}; known: {registry.names()}")


def _model_choices(model: Mapping[str, Any]) -> None:
    _registered(model, "backbone_type", BACKBONES)
    _registered(model, "fpn_type", NECKS)
    _registered(model, "head_type", HEADS)
    _choice(model, "sgp_mixture", "model", ("tridet", "softmax"))
    _choice(model, "downsample_type", "model", ("max", "avg"))
    _choice(model, "eval_padding", "model", PADDING_MODES)
    _choice(model, "train_padding", "model", PADDING_MODES)
    _choice(model, "decoupled_uncertainty", "model", ("std", "entropy", "none"))
    for key in ("decoupled_uncertainty_power", "decoupled_dfl_weight", "input_noise", "iou_weight_power"):
        _require(_is_number(model[key]) and model[key] >= 0, f"model.{key}",
                 f"must be a non-negative number, got {model[key]!r}")
    _require(isinstance(model["decoupled_class_aware"], bool), "model.decoupled_class_aware", "must be true or false")


def _embd_width(model: Mapping[str, Any], ds: Mapping[str, Any]) -> int:
    """The backbone's width: embd_dim, or the sum of its per-feature-group projection widths
    (ActionFormer's Ego4D configs: ``input_dim`` and ``embd_dim`` lists of one length)."""
    embd, dims = model["embd_dim"], ds["input_dim"]
    if not isinstance(embd, list):
        _positive_ints(model, ("embd_dim",), "model")
        _require(not isinstance(dims, list), "model.embd_dim",
                 f"dataset.input_dim lists {len(dims) if isinstance(dims, list) else 0} feature groups, so "
                 f"embd_dim must list one projection width per group (as ActionFormer requires), got {embd!r}")
        return int(embd)
    _require(len(embd) > 0 and all(_is_int(e) and e > 0 for e in embd), "model.embd_dim",
             f"must be a positive integer or a list of them, got {embd!r}")
    _require(isinstance(dims, list) and len(dims) == len(embd), "model.embd_dim",
             f"lists {len(embd)} projection widths, so dataset.input_dim must list as many feature groups, "
             f"got {dims!r}")
    return sum(embd)


def _model_sizes(model: Mapping[str, Any], ds: Mapping[str, Any]) -> None:
    width = _embd_width(model, ds)
    _positive_ints(model, ("fpn_dim", "head_dim", "n_head", "embd_kernel_size", "head_kernel_size",
                           "head_num_layers", "num_bins"), "model")
    mlp = model["sgp_mlp_dim"]
    if model["backbone_type"] == "sgp" or mlp is not None:
        _require(_is_int(mlp) and mlp > 0, "model.sgp_mlp_dim",
                 "is required by the SGP backbone (TriDet's defaults leave it undefined; every TriDet YAML "
                 "sets it)" if mlp is None else f"must be a positive integer, got {mlp!r}")
    _require(width % model["n_head"] == 0 or model["backbone_type"] != "convTransformer",
             "model.n_head", f"embd_dim {model['embd_dim']} is not divisible by n_head {model['n_head']}")
    if model["fpn_type"] == "identity":
        _require(model["fpn_dim"] == width, "model.fpn_dim",
                 f"the identity neck passes backbone features through, so fpn_dim must equal "
                 f"embd_dim ({model['embd_dim']}), got {model['fpn_dim']}")
    if model["backbone_type"] == "sgp":
        _require(width % 16 == 0, "model.embd_dim",
                 f"the SGP backbone's GroupNorm uses 16 groups, so embd_dim must be a multiple of 16, "
                 f"got {model['embd_dim']}")


def _per_level(value: Any, num_levels: int, valid: Any) -> bool:
    """``value`` is one valid entry, or a list of one valid entry per level."""
    if isinstance(value, list):
        return len(value) == num_levels and all(valid(v) for v in value)
    return bool(valid(value))


def _model_pyramid(model: Mapping[str, Any], ds: Mapping[str, Any]) -> None:
    arch = model["backbone_arch"]
    _require(isinstance(arch, list) and len(arch) == 3 and all(_is_int(a) and a >= 0 for a in arch),
             "model.backbone_arch", f"must be three non-negative integers, got {arch!r}")
    num_levels = arch[-1] + 1
    _require(model["scale_factor"] in (1, 2, 3, 4) and _is_int(model["scale_factor"]),
             "model.scale_factor", f"must be a small positive integer, got {model['scale_factor']!r}")
    ranges = model["regression_range"]
    _require(isinstance(ranges, list) and len(ranges) == num_levels
             and all(isinstance(r, list) and len(r) == 2 and r[0] <= r[1] for r in ranges),
             "model.regression_range",
             f"must hold one [low, high] pair per pyramid level ({num_levels} levels for "
             f"backbone_arch {arch}), got {ranges!r}")
    _require(_is_int(model["fpn_start_level"]) and 0 <= model["fpn_start_level"] < num_levels,
             "model.fpn_start_level", f"must lie in [0, {num_levels - 1}], got {model['fpn_start_level']!r}")
    win = model["n_mha_win_size"]
    _require(_per_level(win, num_levels, lambda w: w == GLOBAL_ATTENTION or (_is_int(w) and w > 0)),
             "model.n_mha_win_size",
             f"must be 'global' (ActionFormer: -1), a positive int, or one of those per level "
             f"({num_levels}), got {win!r}")
    if model["backbone_type"] == "sgp":
        _require(_per_level(model["n_sgp_win_size"], num_levels, lambda w: _is_int(w) and w > 0),
                 "model.n_sgp_win_size",
                 f"must be a positive kernel size or one per level ({num_levels}), got {model['n_sgp_win_size']!r} "
                 f"(TriDet's default -1 builds no SGP block; every TriDet YAML sets it)")
    if model["eval_pad_divisor"] == "sgp_window":
        _require(_per_level(model["n_sgp_win_size"], num_levels, _is_int), "model.n_sgp_win_size",
                 f"model.eval_pad_divisor 'sgp_window' reads it: an integer or one per level ({num_levels}), "
                 f"got {model['n_sgp_win_size']!r}")
        top = model["scale_factor"] ** arch[-1]
        _require(sgp_div_factor(model) % top == 0, "model.n_sgp_win_size",
                 f"model.eval_pad_divisor 'sgp_window' pads over-length inputs to a multiple of "
                 f"{sgp_div_factor(model)} (stride x n_sgp_win_size), which the top level's stride {top} "
                 f"does not divide")
    if model["backbone_type"] == "convTransformer":
        div = attention_div_factor(model)
        _require(ds["max_seq_len"] % div == 0, "dataset.max_seq_len",
                 f"{ds['max_seq_len']} is not divisible by {div} (the pyramid's strides times the "
                 f"attention window {win})")
    else:
        top = model["scale_factor"] ** arch[-1]
        _require(ds["max_seq_len"] % top == 0, "dataset.max_seq_len",
                 f"{ds['max_seq_len']} is not divisible by the top level's stride {top}")


def _train_cfg(train: Mapping[str, Any], num_classes: int) -> None:
    _choice(train, "center_sample", "train_cfg", ("radius", "none"))
    _require(_is_number(train["center_sample_radius"]) and train["center_sample_radius"] > 0,
             "train_cfg.center_sample_radius", "must be positive")
    weight = train["loss_weight"]
    _require(weight == ADAPTIVE_LOSS_WEIGHT or (_is_number(weight) and weight > 0), "train_cfg.loss_weight",
             f"must be a positive number or 'adaptive' (ActionFormer: <= 0), got {weight!r}")
    clip = train["clip_grad_l2norm"]
    _require(clip is None or (_is_number(clip) and clip > 0), "train_cfg.clip_grad_l2norm",
             f"must be a positive norm or null for no clipping (ActionFormer: -1), got {clip!r}")
    _require(_is_number(train["cls_prior_prob"]) and 0 < train["cls_prior_prob"] < 1,
             "train_cfg.cls_prior_prob", "must lie in (0, 1)")
    _require(_is_number(train["init_loss_norm"]) and train["init_loss_norm"] > 0,
             "train_cfg.init_loss_norm", "must be positive")
    for key in ("dropout", "droppath", "label_smoothing"):
        _require(_is_number(train[key]) and 0 <= train[key] < 1, f"train_cfg.{key}", "must lie in [0, 1)")
    _require(isinstance(train["head_empty_cls"], list)
             and all(_is_int(c) and 0 <= c < num_classes for c in train["head_empty_cls"]),
             "train_cfg.head_empty_cls", f"must list class ids below num_classes {num_classes}")


def _test_cfg(test: Mapping[str, Any]) -> None:
    _choice(test, "nms_method", "test_cfg", ("soft", "hard", "none"))
    _positive_ints(test, ("pre_nms_topk", "max_seg_num"), "test_cfg")
    for key in ("pre_nms_thresh", "min_score", "iou_threshold"):
        _require(_in_range(test[key], 0.0, 1.0), f"test_cfg.{key}", f"must lie in [0, 1], got {test[key]!r}")
    voting = test["voting_thresh"]
    _require(voting is None or _in_range(voting, 0.0, 1.0), "test_cfg.voting_thresh",
             f"must lie in (0, 1] or be null for no voting (ActionFormer: <= 0), got {voting!r}")
    _require(_is_number(test["nms_sigma"]) and test["nms_sigma"] > 0, "test_cfg.nms_sigma", "must be positive")
    _require(_is_number(test["duration_thresh"]) and test["duration_thresh"] >= 0, "test_cfg.duration_thresh",
             f"must be a non-negative length, got {test['duration_thresh']!r}")


def _opt(opt: Mapping[str, Any]) -> None:
    _choice(opt, "type", "opt", ("AdamW", "SGD"))
    _require(_is_number(opt["learning_rate"]) and opt["learning_rate"] > 0, "opt.learning_rate", "must be positive")
    _require(_is_number(opt["weight_decay"]) and opt["weight_decay"] >= 0, "opt.weight_decay",
             "must be non-negative")
    _positive_ints(opt, ("epochs",), "opt")
    _require(_is_int(opt["warmup_epochs"]) and opt["warmup_epochs"] >= 0, "opt.warmup_epochs",
             f"must be a non-negative integer, got {opt['warmup_epochs']!r}")
    _choice(opt, "schedule_type", "opt", ("cosine", "multistep"))
    _require(opt["early_stop_epochs"] is None or (_is_int(opt["early_stop_epochs"]) and opt["early_stop_epochs"] > 0),
             "opt.early_stop_epochs", "must be null or a positive integer")


def _loader(loader: Mapping[str, Any]) -> None:
    _positive_ints(loader, ("batch_size",), "loader")
    _require(_is_int(loader["num_workers"]) and loader["num_workers"] >= 0, "loader.num_workers",
             "must be a non-negative integer")
    _require(_is_int(loader["length_buckets"]) and loader["length_buckets"] >= 0, "loader.length_buckets",
             f"must be 0 (shuffled batches) or the batches per length-sorted pool, got {loader['length_buckets']!r}")


def _engine(eng: Mapping[str, Any], opt: Mapping[str, Any]) -> None:
    _choice(eng, "eval_weights", "engine", ("ema", "model"))
    _choice(eng, "amp", "engine", ("none", "bf16", "fp16"))
    _require(_is_number(eng["ema_decay"]) and 0 < eng["ema_decay"] < 1, "engine.ema_decay", "must lie in (0, 1)")
    # Like ActionFormer, a run trains warmup_epochs + epochs epochs in all.
    total_epochs = opt["epochs"] + opt["warmup_epochs"]
    _require(isinstance(eng["eval_epochs"], list) and all(_is_int(e) and 0 < e <= total_epochs
                                                          for e in eng["eval_epochs"]),
             "engine.eval_epochs",
             f"must list epochs in [1, warmup_epochs + epochs = {total_epochs}], got {eng['eval_epochs']!r}")
    _positive_ints(eng, ("eval_batch_size",), "engine")
    _require(isinstance(eng["compile"], bool), "engine.compile", f"must be true or false, got {eng['compile']!r}")


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check every section of a merged config.

    Raises:
        ConfigError: the first impossible value, naming its dotted key.
    """
    _top_level(cfg)
    _recipe(cfg)
    _dataset(cfg["dataset"], cfg["dataset_name"])
    _model_choices(cfg["model"])
    _model_sizes(cfg["model"], cfg["dataset"])
    _model_pyramid(cfg["model"], cfg["dataset"])
    _train_cfg(cfg["train_cfg"], cfg["dataset"]["num_classes"])
    _test_cfg(cfg["test_cfg"])
    _opt(cfg["opt"])
    _loader(cfg["loader"])
    _engine(cfg["engine"], cfg["opt"])
