"""The defaults every config is merged over: ActionFormer's or TriDet's, plus tal_lab's own keys.

:data:`DEFAULTS` are ActionFormer's ``libs/core/config.py`` defaults (commit 61ea7eb) with
tal_lab's keys beside them (``recipe``, ``model.head_type``, the TriDet SGP and Trident keys,
the recipe options of :mod:`tal_lab.config.dialects`, ``dataset.synthetic``, the ``engine``
section). :data:`TRIDET_DEFAULTS` are the same keys with TriDet's defaults (commit 764b816)
where TriDet has them: a config in TriDet's dialect is filled by these. Values are written as
tal_lab holds them after loading: the references' sentinels are explicit
(:mod:`tal_lab.config.sentinels`), and their tuples are lists so that a YAML round trip gives
back the same config.
"""

from __future__ import annotations

from typing import Any, Mapping

from tal_lab.config.dialects import ACTIONFORMER, RECIPE_OPTIONS, TRIDET
from tal_lab.config.frozen import freeze, thaw
from tal_lab.config.sentinels import GLOBAL_ATTENTION

__all__ = ["DEFAULTS", "TRIDET_DEFAULTS", "RECIPE_DEFAULTS", "DATASET_NAMES", "FREE_FORM_KEYS", "DERIVED_MODEL_KEYS",
           "PADDING_MODES"]

DATASET_NAMES = ("thumos", "anet", "epic", "synthetic", "ego4d", "hacs")

# model.eval_padding / model.train_padding (what each means: tal_lab.models.padding).
PADDING_MODES = ("auto", "reference", "minimal")

_DEFAULTS: dict[str, Any] = {
    # tal_lab: the dialect the config was read in (tal_lab.config.dialects), recorded at load.
    "recipe": ACTIONFORMER,
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
        # tal_lab: recipe options (tal_lab.config.dialects.RECIPE_OPTIONS), ActionFormer's values.
        "trunc_window": "widened",
        "gt_filter": "duplicates_and_short",
        # TriDet's HACS feature type ('i3d', 'slowfast' or 'tsp'; tal_lab.data.hacs); unused otherwise.
        "backbone_type": None,
        # tal_lab: EPIC-Kitchens' verb / noun annotation files are chosen through json_file;
        # the synthetic benchmark's identity (preset, seed) and its knobs.
        "synthetic": {"preset": "quick", "seed": 0, "knobs": {}},
        # tal_lab: 'cwd' reads relative json_file / feat_folder from the working directory (as
        # ActionFormer does); 'config' from the YAML file's folder (generated configs; docs/config.md).
        "paths_relative_to": "cwd",
        # tal_lab: how evaluation labels detections (docs/evaluation.md): 'corrected' scores every
        # class id of the dataset; 'official' reproduces ActionFormer's evaluator, which renumbers
        # the ground truth's classes and leaves other predicted ids as they are (EPIC's numbers).
        "eval_label_space": "corrected",
    },
    # tal_lab: length_buckets 0 shuffles as the reference; N sorts by length within pools of
    # N batches (tal_lab.data.bucketing), less padding under model.train_padding minimal.
    "loader": {"batch_size": 8, "num_workers": 4, "length_buckets": 0},
    "model": {
        "backbone_type": "convTransformer",
        "fpn_type": "identity",
        "backbone_arch": [2, 2, 5],
        "scale_factor": 2,
        "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]],
        "n_head": 4,
        "n_mha_win_size": GLOBAL_ATTENTION,  # ActionFormer: -1
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
        # tal_lab (PADDING_MODES): 'reference' pads every eval video like ActionFormer does (to
        # max_seq_len); 'minimal' pads only to the pyramid's divisor (faster; exact for models
        # whose valid outputs do not depend on the amount of padding); 'auto' is 'minimal' for
        # such backbones and 'reference' for the others (tal_lab.models.padding).
        "eval_padding": "auto",
        # tal_lab: the same for training batches ('reference': to max_seq_len as ActionFormer;
        # 'minimal': to the longest video rounded up; same losses and gradients where exact).
        "train_padding": "auto",
        # tal_lab: recipe option (tal_lab.config.dialects.RECIPE_OPTIONS), ActionFormer's value.
        "eval_pad_divisor": "attention_window",
    },
    "train_cfg": {
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "loss_weight": 1.0,
        "cls_prior_prob": 0.01,
        "init_loss_norm": 2000,
        "clip_grad_l2norm": None,  # no clipping (ActionFormer: -1)
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
        # tal_lab: recipe option (tal_lab.config.dialects.RECIPE_OPTIONS), ActionFormer's value.
        "voting_weights": "score_iou",
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
        "amp": "none",  # 'none', 'bf16' (CUDA; CPUs with native bf16) or 'fp16' (CUDA)
        "log_every": 10,
        "tensorboard": False,
        "progress": True,
        "device": "auto",  # 'auto', 'cpu', 'cuda', 'cuda:N'
        "eval_batch_size": 1,  # videos per inference batch (1, like the reference)
        # tal_lab: torch.compile the backbone, neck and heads for training (tal_lab.engine.compile;
        # falls back to eager, with a warning, where inductor has no C++ compiler).
        "compile": False,
    },
}

# Frozen: every load merges over a fresh thawed copy, so no loaded config shares its lists.
DEFAULTS: Mapping[str, Any] = freeze(_DEFAULTS)

# TriDet's libs/core/config.py defaults (commit 764b816) where they differ from ActionFormer's.
# TriDet defines no sgp_mlp_dim (None: the SGP backbone requires it) and n_sgp_win_size -1,
# which builds no SGP block (every TriDet YAML sets both); its model has no n_head,
# n_mha_win_size, use_rel_pe or fpn_start_level, which keep ActionFormer's inert values.
_TRIDET_CHANGES: dict[str, Any] = {
    "recipe": TRIDET,
    "model_name": "TriDet",
    "model": {"backbone_type": "sgp", "head_type": "trident", "n_sgp_win_size": -1, "k": 1.5, "init_conv_vars": 0,
              "sgp_mlp_dim": None, "num_bins": 16, "iou_weight_power": 1.0, "input_noise": 0,
              "boudary_kernel_size": 3, "downsample_type": "max"},
    "opt": {"eta_min": 1e-8},
}


def _tridet_defaults() -> dict[str, Any]:
    cfg = thaw(_DEFAULTS)
    for section, values in _TRIDET_CHANGES.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    for option in RECIPE_OPTIONS:
        section, name = option.key.split(".")
        cfg[section][name] = option.defaults[TRIDET]
    return cfg


TRIDET_DEFAULTS: Mapping[str, Any] = freeze(_tridet_defaults())

# The defaults of each dialect (tal_lab.config.dialects.RECIPES).
RECIPE_DEFAULTS: Mapping[str, Mapping[str, Any]] = freeze({ACTIONFORMER: DEFAULTS, TRIDET: TRIDET_DEFAULTS})

# Keys whose value is a free-form mapping (checked by the module that uses them).
FREE_FORM_KEYS = frozenset({"dataset.synthetic.knobs"})

# The model keys load_config derives as ActionFormer does (copies of dataset.input_dim,
# num_classes, max_seq_len and of the train_cfg / test_cfg sections); a config given to
# load_config has them dropped and derived again, so they always agree with their sources.
DERIVED_MODEL_KEYS = ("input_dim", "num_classes", "max_seq_len", "train_cfg", "test_cfg")
