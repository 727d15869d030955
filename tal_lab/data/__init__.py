"""Datasets in ActionFormer's format (THUMOS14, ActivityNet-1.3, EPIC-Kitchens-100, Ego4D) and
TriDet's HACS, batching, loaders, whole-folder validation, and the synthetic THUMOS14-shaped
benchmark.

Typical use::

    cfg = load_config("path/to/config.yaml")
    loader = build_data_loader(cfg, "train")      # batches are lists of video dicts
    report = validate_dataset("path/to/folder")   # every problem at once
    generate_synthetic("out", preset="quick")     # writes out/config.yaml
"""

from tal_lab.data.actionformer import (ActionFormerDataset, ActivityNetDataset, EpicKitchensDataset, SyntheticDataset,
                                       ThumosDataset)
from tal_lab.data.build import DATASETS, build_dataset
from tal_lab.data.ego4d import Ego4DDataset
from tal_lab.data.hacs import HacsDataset
from tal_lab.data.batching import collate_videos, pad_videos
from tal_lab.data.errors import DataError, DataFileNotFoundError, Problem
from tal_lab.data.loader import build_data_loader, make_data_loader, seed_worker
from tal_lab.data.synthetic import dataset_digest, generate_synthetic
from tal_lab.data.synthetic_spec import SYNTHETIC_PRESETS, SyntheticKnobs, knobs_from_mapping
from tal_lab.data.transforms import truncate_video
from tal_lab.data.validate import ValidationReport, validate_dataset

__all__ = [
    "DATASETS", "ActionFormerDataset", "ActivityNetDataset", "EpicKitchensDataset", "SyntheticDataset",
    "ThumosDataset", "Ego4DDataset", "HacsDataset", "build_dataset", "collate_videos", "pad_videos", "DataError",
    "DataFileNotFoundError", "Problem", "build_data_loader", "make_data_loader", "seed_worker", "dataset_digest", "generate_synthetic",
    "SYNTHETIC_PRESETS", "SyntheticKnobs", "knobs_from_mapping", "truncate_video", "ValidationReport",
    "validate_dataset",
]
