"""HACS Segments as TriDet reads it (``libs/datasets/hacs.py``, commit 764b816).

On disk::

    HACS_segments_v1.1.1.json   {"database": {video_id: {"subset": "training" | "validation" |
                                 "testing", "duration": 60.1, "annotations": [{"label": ...,
                                 "segment": [start_sec, end_sec], "label_id": 0..199}, ...]}}}
    {feat_folder}/{split}/{video_id}{file_ext}     (dataset.backbone_type 'i3d' or 'slowfast')
    {feat_folder}/v_{video_id}{file_ext}           (dataset.backbone_type 'tsp')

``{split}`` is the first name of the split being loaded (``train_split[0]`` or
``val_split[0]``), as TriDet joins it. ``dataset.backbone_type`` names the features:

* ``i3d``: one (T, 2048) ``.npy`` per video (TriDet's config: stride 1 at 2 fps);
* ``slowfast``: one ``.pkl`` per video, a pickled dict of torch tensors ``slow_feature``
  (1, C_s, T) and ``fast_feature`` (1, C_f, T), concatenated to (T, 2304)
  (:mod:`tal_lab.data.pickled_features`, read without running code from the file);
* ``tsp``: ``v_{video_id}`` ``.npy`` files directly in ``feat_folder``.

As in TriDet: the label map holds exactly ``num_classes`` labels unless num_classes is 1
(every label becomes 0: proposals); repeated annotations (same label_id, both ends within
1e-3 s) are dropped but, unlike ActionFormer's ActivityNet, near-empty ones are kept (the
recipe option ``dataset.gt_filter: duplicates``, TriDet's; ``duplicates_and_short`` drops them);
``force_upsampling`` resizes as for ActivityNet; in training, actions starting at or after the
last feature step are dropped and the others' ends clipped to it (no half-window offset, no
``trunc_thresh``, unlike ActionFormer's ActivityNet). Evaluation at tIoU 0.5:0.05:0.95.

Deliberate differences: TriDet's i3d branch reads ``self.file_prefix``, which its HACS dataset
never sets (the run stops with AttributeError); here ``dataset.file_prefix`` applies (null: no
prefix), while slowfast and tsp ignore it as TriDet does. Features are cast to float32
(TriDet keeps the pickled dtype). TriDet's fixed-length branch (``feat_stride <= 0``) is
refused by the config, which requires a positive stride.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from tal_lab.config.validate import HACS_FEATURE_TYPES
from tal_lab.data.actionformer import ActivityNetDataset
from tal_lab.data.features import Reader
from tal_lab.data.layout import FeatureLayout
from tal_lab.data.transforms import clip_segments_to_features

__all__ = ["HacsDataset", "TSP_FILE_PREFIX"]
# TriDet names TSP feature files after ActivityNet's YouTube ids: 'v_' + video id.
TSP_FILE_PREFIX = "v_"


class HacsDataset(ActivityNetDataset):
    """HACS Segments with I3D, SlowFast or TSP features (``dataset.backbone_type``)."""

    dataset_name = "HACS"
    default_gt_filter = "duplicates"
    default_trunc_window = "clipped"  # TriDet's truncation (dataset.trunc_window)

    @classmethod
    def feature_layout(cls, dataset_cfg: Mapping[str, Any], split: Sequence[str]) -> FeatureLayout:
        """TriDet's paths: the split's sub-folder (i3d, slowfast) or ``v_`` files (tsp)."""
        backbone = dataset_cfg.get("backbone_type")
        if backbone not in HACS_FEATURE_TYPES:
            raise ValueError(f"config key 'dataset.backbone_type': {backbone!r} is not one of {HACS_FEATURE_TYPES} "
                             "(TriDet's HACS feature types)")
        folder = Path(str(dataset_cfg["feat_folder"]))
        prefix = {"tsp": TSP_FILE_PREFIX, "slowfast": ""}.get(backbone, dataset_cfg.get("file_prefix") or "")
        reader: Reader = "slowfast_pickle" if backbone == "slowfast" else "array"
        if backbone != "tsp":
            folder = folder / split[0]
        input_dim = int(dataset_cfg["input_dim"])
        return FeatureLayout((folder,), prefix, str(dataset_cfg["file_ext"]), (input_dim,), input_dim, reader)

    def _training_segments(
        self, segments: torch.Tensor, labels: torch.Tensor, feat_len: int, offset_grid: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return clip_segments_to_features(segments, labels, feat_len)
