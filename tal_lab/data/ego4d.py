"""Ego4D Moment Queries as ActionFormer reads it (``libs/datasets/ego4d.py``, commit 61ea7eb).

On disk (what ActionFormer's ``tools/convert_ego4d_trainval.py`` writes)::

    ego4d.json   {"version": "v1", "database": {clip_uid: {"subset": "training" | "validation",
                  "duration": 480.0, "fps": 30.0, "annotations": [{"label": ..., "segment":
                  [start_sec, end_sec], "segment(frames)": [...], "label_id": 0..109}, ...]}}}
    {feat_folder}/{clip_uid}.npy   one (T, C) float32 array per clip and feature type

``dataset.feat_folder`` is one folder or a list of them (e.g. SlowFast, Omnivore and EgoVLP
features); a clip's arrays are concatenated along channels in the listed order, so they must
have the same length. ``dataset.input_dim`` is the total channel count, or a list with each
folder's (ActionFormer's ``ego4d_slowfast_omnivore_egovlp.yaml``: [2304, 1536, 256]).

As in ActionFormer: the label map holds exactly ``num_classes`` labels; no annotation is
dropped; evaluation at tIoU 0.1:0.1:0.5; ``force_upsampling`` is not used. A clip's optional
``offset`` (test clips) is passed through by the reference and used nowhere; it is not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tal_lab.data.actionformer import ActionFormerDataset
from tal_lab.data.layout import FeatureLayout

__all__ = ["Ego4DDataset", "feature_folders"]


def feature_folders(dataset_cfg: Mapping[str, Any]) -> list[Path]:
    """``dataset.feat_folder`` as a list of folders (one folder or several)."""
    folders = dataset_cfg["feat_folder"]
    return [Path(str(f)) for f in folders] if isinstance(folders, (list, tuple)) else [Path(str(folders))]


class Ego4DDataset(ActionFormerDataset):
    """Ego4D Moment Queries clips with features from one or several folders."""

    dataset_name = "ego4d"
    tiou_thresholds = tuple(np.linspace(0.1, 0.5, 5).tolist())

    @classmethod
    def feature_layout(cls, dataset_cfg: Mapping[str, Any], split: Sequence[str]) -> FeatureLayout:
        """One file per clip in each feature folder, concatenated along channels."""
        folders = feature_folders(dataset_cfg)
        input_dim = dataset_cfg["input_dim"]
        if isinstance(input_dim, (list, tuple)):
            if len(input_dim) != len(folders):
                raise ValueError(f"dataset.input_dim lists {len(input_dim)} channel counts but dataset.feat_folder "
                                 f"lists {len(folders)} folders")
            dims: tuple[int | None, ...] = tuple(int(d) for d in input_dim)
            total = sum(int(d) for d in input_dim)
        else:
            total = int(input_dim)
            dims = (total,) if len(folders) == 1 else (None,) * len(folders)
        return FeatureLayout(tuple(folders), dataset_cfg.get("file_prefix") or "", str(dataset_cfg["file_ext"]),
                             dims, total)
