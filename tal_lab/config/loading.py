"""Configuration: ActionFormer's YAML schema and defaults, read and validated once, at the edge.

A config is a plain nested ``dict`` in ActionFormer's schema (``dataset``, ``model``,
``train_cfg``, ``test_cfg``, ``opt``, ``loader``, ...), so an official ``configs/*.yaml``
loads unchanged and its keys mean what they mean there. tal_lab adds a few keys of its own
(``model.head_type``, the TriDet SGP keys, ``dataset.synthetic``, the ``engine`` section);
they are listed in :data:`DEFAULTS` with their defaults.

:func:`load_config` merges a YAML file or dict over a *fresh deep copy* of the defaults (the
reference merges by reference, so editing one loaded config could change the defaults seen by
the next), applies ``--set key=value`` overrides, copies the shared values into ``model`` as
ActionFormer does, and validates: unknown keys and impossible values raise a
:class:`ConfigError` (a ``ValueError``) naming the dotted key.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

__all__ = [
    "ConfigError",
    "DEFAULTS",
    "BACKBONE_TYPES",
    "FPN_TYPES",
    "HEAD_TYPES",
    "DATASET_NAMES",
    "PAPER_CONFIGURATIONS",
    "load_config",
    "parse_overrides",
    "apply_overrides",
    "paper_configuration",
    "dump_config",
    "level_strides",
    "max_div_factor",
]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the dotted key."""


BACKBONE_TYPES = ("convTransformer", "conv", "sgp", "maxpool")
FPN_TYPES = ("identity", "fpn")
HEAD_TYPES = ("actionformer", "trident", "decoupled")
DATASET_NAMES = ("thumos", "anet", "epic", "synthetic")
# The synthetic benchmark's presets (tal_lab.data.synthetic_spec.PRESETS; a test keeps them equal).
SYNTHETIC_PRESETS = ("tiny", "quick", "thumos14")

# ActionFormer's libs/core/config.py defaults (commit 61ea7eb), plus tal_lab's own keys.
# Tuples of the reference are lists here so that a YAML round trip gives back the same config.
DEFAULTS: dict[str, Any] = {
    "init_rand_seed": 1234567891,
    "dataset_name": "epic",
    "devices": ["cuda:0"],
    "train_split": ["training"],
    "val_split": ["validation"],
    "model_name": "LocPointTransformer",
    "output_folder": "./ckpt/",
    "dataset": {
        "json_file": None,
        "feat_folder": None,
        "file_prefix": None,
        "file_ext": ".npy",
        "feat_stride": 16,
        "num_frames": 32,
        "default_fps": None,
        "input_dim": 2304,
        "num_classes": 97,
        "downsample_rate": 1,
        "max_seq_len": 2304,
        "trunc_thresh": 0.5,
        "crop_ratio": None,
        "force_upsampling": False,
        # tal_lab: EPIC-Kitchens' verb / noun annotation files are chosen through json_file;
        # the synthetic benchmark's identity (preset, seed) and its knobs.
        "synthetic": {"preset": "quick", "seed": 0, "knobs": {}},
    },
    "loader": {"batch_size": 8, "num_workers": 4},
    "model": {
        "backbone_type": "convTransformer",
        "fpn_type": "identity",
        "backbone_arch": [2, 2, 5],
        "scale_factor": 2,
        "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]],
        "n_head": 4,
        "n_mha_win_size": -1,
        "embd_kernel_size": 3,
        "embd_dim": 512,
        "embd_with_ln": True,
        "fpn_dim": 512,
        "fpn_with_ln": True,
        "fpn_start_level": 0,
        "head_dim": 512,
        "head_kernel_size": 3,
        "head_num_layers": 3,
        "head_with_ln": True,
        "max_buffer_len_factor": 6.0,
        "use_abs_pe": False,
        "use_rel_pe": False,
        # tal_lab: which head (issue 7 adds trident / decoupled).
        "head_type": "actionformer",
        # TriDet's SGP backbone keys (its thumos_i3d.yaml values are the defaults here, except
        # sgp_mlp_dim, which TriDet's own defaults leave undefined).
        "n_sgp_win_size": 1,
        "k": 5,
        "init_conv_vars": 0,
        "sgp_mlp_dim": 768,
        "downsample_type": "max",
        # tal_lab: 'tridet' (TriDet's SGP, the default) or 'softmax' (the paper's equation (1):
        # a learnable softmax-normalised mixture over the granularity branches).
        "sgp_mixture": "tridet",
        # TriDet's Trident-head keys (used by head_type trident / decoupled).
        "num_bins": 16,
        "iou_weight_power": 0.2,
        "boudary_kernel_size": 3,
        "input_noise": 0.0,
        # tal_lab's decoupled head (docs/heads.md): how boundary uncertainty re-scores detections.
        "decoupled_uncertainty": "std",  # 'std', 'entropy' or 'none'
        "decoupled_uncertainty_power": 1.0,  # >= 0; 0 turns re-scoring off
        "decoupled_dfl_weight": 0.25,  # >= 0; weight of the distribution focal loss
        "decoupled_class_aware": False,  # one boundary distribution per class instead of per point
        # tal_lab: 'reference' pads every eval video like ActionFormer does (to max_seq_len);
        # 'minimal' pads only to the pyramid's divisor (faster; exact for models whose valid
        # outputs do not depend on the amount of padding).
        "eval_padding": "reference",
        # tal_lab: 'reference' pads training batches to max_seq_len as ActionFormer does;
        # 'minimal' pads to the longest video rounded up (same results where exact, less work).
        "train_padding": "reference",
    },
    "train_cfg": {
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "loss_weight": 1.0,
        "cls_prior_prob": 0.01,
        "init_loss_norm": 2000,
        "clip_grad_l2norm": -1,
        "head_empty_cls": [],
        "dropout": 0.0,
        "droppath": 0.1,
        "label_smoothing": 0.0,
    },
    "test_cfg": {
        "pre_nms_thresh": 0.001,
        "pre_nms_topk": 5000,
        "iou_threshold": 0.1,
        "min_score": 0.01,
        "max_seg_num": 1000,
        "nms_method": "soft",
        "nms_sigma": 0.5,
        "duration_thresh": 0.05,
        "multiclass_nms": True,
        "ext_score_file": None,
        "voting_thresh": 0.75,
    },
    "opt": {
        "type": "AdamW",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "learning_rate": 1e-3,
        "eta_min": 0.0,
        "epochs": 30,
        "warmup": True,
        "warmup_epochs": 5,
        "schedule_type": "cosine",
        "schedule_steps": [],
        "schedule_gamma": 0.1,
        # ActionFormer's train script reads this with .get: stop early, schedule unchanged.
        "early_stop_epochs": None,
    },
    # tal_lab's engine settings; the reference hard-codes these in its train script.
    "engine": {
        "ema": True,
        "ema_decay": 0.999,
        "eval_weights": "ema",  # 'ema' or 'model'
        "eval_epochs": [],  # extra epochs evaluated during the run (Table II from one run)
        "amp": "none",  # 'none', 'bf16' or 'fp16' (CUDA only)
        "log_every": 10,
        "tensorboard": False,
        "progress": True,
        "device": "auto",  # 'auto', 'cpu', 'cuda', 'cuda:N'
        "eval_batch_size": 1,  # videos per inference batch (1, like the reference)
    },
}

# Keys whose value is a free-form mapping (checked by the module that uses them).
_FREE_FORM = {"dataset.synthetic.knobs"}

# The study's configurations (paper Table I): backbone / neck pairs.
PAPER_CONFIGURATIONS: dict[str, dict[str, str]] = {
    "original": {"backbone_type": "convTransformer", "fpn_type": "identity"},
    "A": {"backbone_type": "convTransformer", "fpn_type": "fpn"},
    "B": {"backbone_type": "conv", "fpn_type": "identity"},
    "C": {"backbone_type": "conv", "fpn_type": "fpn"},
    "D": {"backbone_type": "sgp", "fpn_type": "fpn"},
    "E": {"backbone_type": "sgp", "fpn_type": "identity"},
}


def _merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Merge ``update`` into ``base`` in place; unknown keys raise ConfigError."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"unknown config key '{dotted}' (known keys here: {known})")
        if isinstance(base[key], dict) and dotted not in _FREE_FORM:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{dotted}' must be a mapping, got {value!r}")
            _merge(base[key], value, prefix=f"{dotted}.")
        else:
            base[key] = copy.deepcopy(value)
    return base


def _tolist(value: Any) -> Any:
    """Turn tuples (the reference's YAML loader keeps lists, its defaults use tuples) into lists."""
    if isinstance(value, (list, tuple)):
        return [_tolist(v) for v in value]
    if isinstance(value, dict):
        return {k: _tolist(v) for k, v in value.items()}
    return value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key.sub=value`` strings (values in YAML syntax) into a nested dict."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{item}' has an empty key")
        value = yaml.safe_load(raw) if raw.strip() else None
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return nested


def apply_overrides(cfg: Mapping[str, Any], overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """Return a validated copy of ``cfg`` with ``overrides`` (nested dict or key=value strings).

    ``train_cfg`` / ``test_cfg`` overrides go to the top-level sections, which are then copied
    into ``model`` again, so ``train_cfg.loss_weight=2`` is all a lambda_reg ablation needs.
    """
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    user = copy.deepcopy(dict(cfg))
    # model.train_cfg / model.test_cfg are derived; drop them so the top-level ones win.
    model = dict(user.get("model", {}))
    model.pop("train_cfg", None)
    model.pop("test_cfg", None)
    user["model"] = model
    for key in ("input_dim", "num_classes", "max_seq_len"):
        user["model"].pop(key, None)
    return load_config(_deep_update(user, overrides))


def _deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load an ActionFormer-schema config (YAML path or dict) over the defaults and validate it.

    Args:
        source: a YAML file (read with ``yaml.safe_load``: opening a config never runs code from
            it), a dict in the same schema, or None for the defaults alone.
        overrides: a nested dict or ``key=value`` strings applied after ``source``.

    Returns:
        A new nested dict: the defaults, updated by ``source`` and ``overrides``, with
        ``model.input_dim``, ``model.num_classes``, ``model.max_seq_len``, ``model.train_cfg``
        and ``model.test_cfg`` filled from ``dataset`` / ``train_cfg`` / ``test_cfg`` as the
        reference does.

    Raises:
        ConfigError: unknown keys or impossible values, naming the dotted key.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if source is None:
        user: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        user = copy.deepcopy(dict(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
        user = loaded
    user = _tolist(user)
    # A previously resolved config carries the derived model keys; they must agree with the
    # sections they are derived from, so drop them and derive again.
    if isinstance(user.get("model"), dict):
        user["model"] = {k: v for k, v in user["model"].items()
                         if k not in ("train_cfg", "test_cfg", "input_dim", "num_classes", "max_seq_len")}
    cfg = _merge(copy.deepcopy(DEFAULTS), user)
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        _merge(cfg, _tolist(dict(overrides)))
    if isinstance(cfg["train_split"], str):
        cfg["train_split"] = [cfg["train_split"]]
    if isinstance(cfg["val_split"], str):
        cfg["val_split"] = [cfg["val_split"]]
    if isinstance(cfg["devices"], str):
        cfg["devices"] = [cfg["devices"]]
    model = cfg["model"]
    model["input_dim"] = cfg["dataset"]["input_dim"]
    model["num_classes"] = cfg["dataset"]["num_classes"]
    model["max_seq_len"] = cfg["dataset"]["max_seq_len"]
    model["train_cfg"] = cfg["train_cfg"]
    model["test_cfg"] = cfg["test_cfg"]
    _validate(cfg)
    return cfg


def level_strides(model_cfg: Mapping[str, Any]) -> list[int]:
    """Stride of each pyramid level in level-0 grid steps (1, 2, 4, ... for scale_factor 2)."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    return [int(model_cfg["scale_factor"]) ** level for level in range(num_levels)]


def _window_sizes(model_cfg: Mapping[str, Any]) -> list[int]:
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    win = model_cfg["n_mha_win_size"]
    if isinstance(win, (list, tuple)):
        return [int(w) for w in win]
    return [int(win)] * num_levels


def max_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """The length every padded input must be divisible by (ActionFormer's max_div_factor).

    Each level halves the sequence; a level with local attention of window w additionally needs
    its length divisible by 2 * (w // 2).
    """
    factor = 1
    for stride, win in zip(level_strides(model_cfg), _window_sizes(model_cfg)):
        needed = stride * (win // 2 * 2 if win > 1 and model_cfg["backbone_type"] == "convTransformer" else 1)
        factor = max(factor, needed)
    return factor


def _require(cond: bool, key: str, problem: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}': {problem}")


def _validate(cfg: dict[str, Any]) -> None:
    ds, model, train, test, opt, eng = (cfg["dataset"], cfg["model"], cfg["train_cfg"],
                                        cfg["test_cfg"], cfg["opt"], cfg["engine"])
    _require(cfg["dataset_name"] in DATASET_NAMES, "dataset_name",
             f"{cfg['dataset_name']!r} is not one of {DATASET_NAMES}")
    for key in ("input_dim", "num_classes", "max_seq_len", "downsample_rate"):
        _require(isinstance(ds[key], int) and ds[key] > 0, f"dataset.{key}",
                 f"must be a positive integer, got {ds[key]!r}")
    for key in ("feat_stride", "num_frames"):
        _require(isinstance(ds[key], (int, float)) and ds[key] > 0, f"dataset.{key}",
                 f"must be positive, got {ds[key]!r}")
    _require(ds["default_fps"] is None or (isinstance(ds["default_fps"], (int, float)) and ds["default_fps"] > 0),
             "dataset.default_fps", f"must be null or positive, got {ds['default_fps']!r}")
    _require(0.0 <= float(ds["trunc_thresh"]) <= 1.0, "dataset.trunc_thresh",
             f"must lie in [0, 1], got {ds['trunc_thresh']!r}")
    crop = ds["crop_ratio"]
    _require(crop is None or (isinstance(crop, list) and len(crop) == 2 and 0 < crop[0] <= crop[1] <= 1),
             "dataset.crop_ratio", f"must be null or [low, high] with 0 < low <= high <= 1, got {crop!r}")

    _require(model["backbone_type"] in BACKBONE_TYPES, "model.backbone_type",
             f"{model['backbone_type']!r} is not one of {BACKBONE_TYPES}")
    _require(model["fpn_type"] in FPN_TYPES, "model.fpn_type",
             f"{model['fpn_type']!r} is not one of {FPN_TYPES}")
    _require(model["head_type"] in HEAD_TYPES, "model.head_type",
             f"{model['head_type']!r} is not one of {HEAD_TYPES}")
    _require(model["sgp_mixture"] in ("tridet", "softmax"), "model.sgp_mixture",
             f"{model['sgp_mixture']!r} is not 'tridet' or 'softmax'")
    _require(model["downsample_type"] in ("max", "avg"), "model.downsample_type",
             f"{model['downsample_type']!r} is not 'max' or 'avg'")
    for key in ("eval_padding", "train_padding"):
        _require(model[key] in ("reference", "minimal"), f"model.{key}",
                 f"{model[key]!r} is not 'reference' or 'minimal'")
    _require(model["decoupled_uncertainty"] in ("std", "entropy", "none"), "model.decoupled_uncertainty",
             f"{model['decoupled_uncertainty']!r} is not 'std', 'entropy' or 'none'")
    for key in ("decoupled_uncertainty_power", "decoupled_dfl_weight", "input_noise", "iou_weight_power"):
        _require(isinstance(model[key], (int, float)) and model[key] >= 0, f"model.{key}",
                 f"must be a non-negative number, got {model[key]!r}")
    _require(isinstance(model["decoupled_class_aware"], bool), "model.decoupled_class_aware", "must be true or false")
    arch = model["backbone_arch"]
    _require(isinstance(arch, list) and len(arch) == 3 and all(isinstance(a, int) and a >= 0 for a in arch),
             "model.backbone_arch", f"must be three non-negative integers, got {arch!r}")
    num_levels = arch[-1] + 1
    _require(model["scale_factor"] in (1, 2, 3, 4) and isinstance(model["scale_factor"], int),
             "model.scale_factor", f"must be a small positive integer, got {model['scale_factor']!r}")
    ranges = model["regression_range"]
    _require(isinstance(ranges, list) and len(ranges) == num_levels
             and all(isinstance(r, list) and len(r) == 2 and r[0] <= r[1] for r in ranges),
             "model.regression_range",
             f"must hold one [low, high] pair per pyramid level ({num_levels} levels for "
             f"backbone_arch {arch}), got {ranges!r}")
    for key in ("embd_dim", "fpn_dim", "head_dim", "n_head", "embd_kernel_size", "head_kernel_size",
                "head_num_layers", "sgp_mlp_dim", "num_bins"):
        _require(isinstance(model[key], int) and model[key] > 0, f"model.{key}",
                 f"must be a positive integer, got {model[key]!r}")
    _require(model["embd_dim"] % model["n_head"] == 0 or model["backbone_type"] != "convTransformer",
             "model.n_head", f"embd_dim {model['embd_dim']} is not divisible by n_head {model['n_head']}")
    _require(0 <= model["fpn_start_level"] < num_levels, "model.fpn_start_level",
             f"must lie in [0, {num_levels - 1}], got {model['fpn_start_level']!r}")
    if model["fpn_type"] == "identity":
        _require(model["fpn_dim"] == model["embd_dim"], "model.fpn_dim",
                 f"the identity neck passes backbone features through, so fpn_dim must equal "
                 f"embd_dim ({model['embd_dim']}), got {model['fpn_dim']}")
    if model["backbone_type"] == "sgp":
        _require(model["embd_dim"] % 16 == 0, "model.embd_dim",
                 f"the SGP backbone's GroupNorm uses 16 groups, so embd_dim must be a multiple of 16, "
                 f"got {model['embd_dim']}")
    win = model["n_mha_win_size"]
    wins = win if isinstance(win, list) else [win]
    _require(all(isinstance(w, int) and (w == -1 or w > 0) for w in wins)
             and (not isinstance(win, list) or len(win) == num_levels),
             "model.n_mha_win_size", f"must be -1 (global), a positive int or one per level, got {win!r}")
    if model["backbone_type"] == "convTransformer":
        div = max_div_factor(model)
        _require(ds["max_seq_len"] % div == 0, "dataset.max_seq_len",
                 f"{ds['max_seq_len']} is not divisible by {div} (the pyramid's strides times the "
                 f"attention window {win})")
    else:
        top = model["scale_factor"] ** arch[-1]
        _require(ds["max_seq_len"] % top == 0, "dataset.max_seq_len",
                 f"{ds['max_seq_len']} is not divisible by the top level's stride {top}")

    _require(train["center_sample"] in ("radius", "none"), "train_cfg.center_sample",
             f"{train['center_sample']!r} is not 'radius' or 'none'")
    _require(train["center_sample_radius"] > 0, "train_cfg.center_sample_radius", "must be positive")
    _require(isinstance(train["loss_weight"], (int, float)) and math.isfinite(train["loss_weight"]),
             "train_cfg.loss_weight", f"must be a finite number, got {train['loss_weight']!r}")
    _require(0 < train["cls_prior_prob"] < 1, "train_cfg.cls_prior_prob", "must lie in (0, 1)")
    _require(train["init_loss_norm"] > 0, "train_cfg.init_loss_norm", "must be positive")
    _require(0 <= train["dropout"] < 1, "train_cfg.dropout", "must lie in [0, 1)")
    _require(0 <= train["droppath"] < 1, "train_cfg.droppath", "must lie in [0, 1)")
    _require(0 <= train["label_smoothing"] < 1, "train_cfg.label_smoothing", "must lie in [0, 1)")
    _require(all(isinstance(c, int) and 0 <= c < ds["num_classes"] for c in train["head_empty_cls"]),
             "train_cfg.head_empty_cls", f"must list class ids below num_classes {ds['num_classes']}")

    _require(test["nms_method"] in ("soft", "hard", "none"), "test_cfg.nms_method",
             f"{test['nms_method']!r} is not 'soft', 'hard' or 'none'")
    for key in ("pre_nms_topk", "max_seg_num"):
        _require(isinstance(test[key], int) and test[key] > 0, f"test_cfg.{key}", "must be a positive integer")
    for key in ("pre_nms_thresh", "min_score", "iou_threshold", "voting_thresh"):
        _require(0 <= test[key] <= 1, f"test_cfg.{key}", f"must lie in [0, 1], got {test[key]!r}")
    _require(test["nms_sigma"] > 0, "test_cfg.nms_sigma", "must be positive")

    _require(opt["type"] in ("AdamW", "SGD"), "opt.type", f"{opt['type']!r} is not 'AdamW' or 'SGD'")
    _require(opt["learning_rate"] > 0, "opt.learning_rate", "must be positive")
    _require(opt["weight_decay"] >= 0, "opt.weight_decay", "must be non-negative")
    _require(isinstance(opt["epochs"], int) and opt["epochs"] > 0, "opt.epochs",
             f"must be a positive integer, got {opt['epochs']!r}")
    _require(isinstance(opt["warmup_epochs"], int) and opt["warmup_epochs"] >= 0, "opt.warmup_epochs",
             f"must be a non-negative integer, got {opt['warmup_epochs']!r}")
    _require(opt["schedule_type"] in ("cosine", "multistep"), "opt.schedule_type",
             f"{opt['schedule_type']!r} is not 'cosine' or 'multistep'")

    loader = cfg["loader"]
    _require(isinstance(loader["batch_size"], int) and loader["batch_size"] > 0, "loader.batch_size",
             "must be a positive integer")
    _require(isinstance(loader["num_workers"], int) and loader["num_workers"] >= 0, "loader.num_workers",
             "must be a non-negative integer")

    _require(eng["eval_weights"] in ("ema", "model"), "engine.eval_weights",
             f"{eng['eval_weights']!r} is not 'ema' or 'model'")
    _require(eng["amp"] in ("none", "bf16", "fp16"), "engine.amp", f"{eng['amp']!r} is not none/bf16/fp16")
    _require(0 < eng["ema_decay"] < 1, "engine.ema_decay", "must lie in (0, 1)")
    # Like ActionFormer, a run trains warmup_epochs + epochs epochs in all.
    total_epochs = opt["epochs"] + opt["warmup_epochs"]
    _require(all(isinstance(e, int) and 0 < e <= total_epochs for e in eng["eval_epochs"]),
             "engine.eval_epochs",
             f"must list epochs in [1, warmup_epochs + epochs = {total_epochs}], got {eng['eval_epochs']!r}")
    _require(isinstance(eng["eval_batch_size"], int) and eng["eval_batch_size"] > 0, "engine.eval_batch_size",
             "must be a positive integer")
    _require(opt["early_stop_epochs"] is None or (isinstance(opt["early_stop_epochs"], int)
                                                  and opt["early_stop_epochs"] > 0),
             "opt.early_stop_epochs", "must be null or a positive integer")
    syn = ds["synthetic"]
    _require(isinstance(syn["seed"], int), "dataset.synthetic.seed", "must be an integer")
    _require(syn["preset"] in SYNTHETIC_PRESETS, "dataset.synthetic.preset",
             f"{syn['preset']!r} is not one of {SYNTHETIC_PRESETS}")
    _require(isinstance(syn["knobs"], dict), "dataset.synthetic.knobs", "must be a mapping")


def paper_configuration(name: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The study's configuration ``name`` ('original', 'A'-'E') applied to ``base``.

    ``base`` is a config (dict or path) holding everything else, e.g. a THUMOS14 config or the
    synthetic benchmark's generated one; by default tal_lab's defaults.
    """
    if name not in PAPER_CONFIGURATIONS:
        raise ConfigError(f"unknown paper configuration {name!r}; choose one of {list(PAPER_CONFIGURATIONS)}")
    cfg = load_config(base) if not (isinstance(base, dict) and "model" in base and "train_cfg" in base["model"]) else base
    return apply_overrides(cfg, {"model": dict(PAPER_CONFIGURATIONS[name])})


def dump_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    """Write a resolved config as YAML (without the derived model.* copies) atomically."""
    out = copy.deepcopy(dict(cfg))
    model = dict(out["model"])
    for key in ("train_cfg", "test_cfg", "input_dim", "num_classes", "max_seq_len"):
        model.pop(key, None)
    out["model"] = model
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(out, sort_keys=False))
    tmp.replace(path)
