"""ActionFormer's published per-dataset settings, as plain config data.

The values each official YAML of actionformer_release sets over the library defaults:
``configs/thumos_i3d.yaml``, ``configs/anet_tsp.yaml`` and ``configs/epic_slowfast_verb.yaml``
(commit 18e5860). They serve datasets that arrive without a config, the synthetic benchmark
(THUMOS14's settings at smaller sizes) and the benchmarks. Paths are left to the caller;
ActivityNet's external classification scores (``ext_score_file``) need a config of one's own.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["THUMOS_I3D", "ANET_TSP", "EPIC_SLOWFAST", "published_config"]

THUMOS_I3D: dict[str, Any] = {
    "train_split": ["validation"],
    "val_split": ["test"],
    "dataset": {"file_prefix": None, "file_ext": ".npy", "num_classes": 20, "input_dim": 2048, "feat_stride": 4,
                "num_frames": 16, "default_fps": None, "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0],
                "max_seq_len": 2304},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 6.0, "n_mha_win_size": 19},
    "opt": {"learning_rate": 1e-4, "epochs": 30, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 100, "clip_grad_l2norm": 1.0, "cls_prior_prob": 0.01,
                  "center_sample": "radius", "center_sample_radius": 1.5},
    "test_cfg": {"voting_thresh": 0.7, "pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001,
                 "multiclass_nms": True},
}
ANET_TSP: dict[str, Any] = {
    "train_split": ["training"], "val_split": ["validation"],
    "dataset": {"file_prefix": "v_", "file_ext": ".npy", "num_classes": 1, "input_dim": 512, "feat_stride": 16,
                "num_frames": 16, "default_fps": 15, "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0],
                "max_seq_len": 768},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 1.0, "n_mha_win_size": [25, 25, 25, 25, 25, -1],
              "n_head": 4, "embd_dim": 256, "fpn_dim": 256, "head_dim": 256, "use_abs_pe": True},
    "opt": {"learning_rate": 1e-3, "epochs": 10, "weight_decay": 0.05, "warmup_epochs": 5},
    "loader": {"batch_size": 16},
    "train_cfg": {"init_loss_norm": 400, "clip_grad_l2norm": 1.0, "cls_prior_prob": 0.01,
                  "center_sample": "radius", "center_sample_radius": 1.5, "label_smoothing": 0.1},
    "test_cfg": {"voting_thresh": 0.85, "pre_nms_topk": 2000, "max_seg_num": 100, "min_score": 0.001,
                 "multiclass_nms": False, "nms_sigma": 0.8, "duration_thresh": 0.1},
}
EPIC_SLOWFAST: dict[str, Any] = {
    "train_split": ["training"], "val_split": ["validation"],
    "dataset": {"file_prefix": None, "file_ext": ".npz", "num_classes": 97, "input_dim": 2304, "feat_stride": 16,
                "num_frames": 32, "default_fps": 30, "trunc_thresh": 0.3, "crop_ratio": [0.9, 1.0],
                "max_seq_len": 2304},
    "model": {"regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 10000]],
              "fpn_type": "identity", "max_buffer_len_factor": 4.0, "n_mha_win_size": 9},
    "opt": {"learning_rate": 1e-4, "epochs": 25, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {"init_loss_norm": 250, "clip_grad_l2norm": 1.0, "cls_prior_prob": 0.01,
                  "center_sample": "radius", "center_sample_radius": 1.5},
    "test_cfg": {"pre_nms_topk": 5000, "max_seg_num": 2000, "min_score": 0.001, "nms_sigma": 0.4,
                 "multiclass_nms": True},
}

_BY_DATASET: dict[str, dict[str, Any]] = {"thumos": THUMOS_I3D, "anet": ANET_TSP, "epic": EPIC_SLOWFAST}


def published_config(dataset_name: str) -> dict[str, Any]:
    """A fresh copy of ActionFormer's settings for ``dataset_name`` ('thumos', 'anet', 'epic').

    Raises:
        ValueError: a dataset without published settings.
    """
    if dataset_name not in _BY_DATASET:
        raise ValueError(f"no published ActionFormer settings for dataset {dataset_name!r}; "
                         f"known: {sorted(_BY_DATASET)}")
    return copy.deepcopy(_BY_DATASET[dataset_name])
