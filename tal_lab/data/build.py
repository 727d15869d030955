"""The table of datasets by ``dataset_name``, and building one from a full config."""

from __future__ import annotations

from typing import Any, Mapping

from tal_lab.data.actionformer import (ActionFormerDataset, ActivityNetDataset, EpicKitchensDataset, SyntheticDataset,
                                       ThumosDataset)
from tal_lab.data.ego4d import Ego4DDataset
from tal_lab.data.hacs import HacsDataset

__all__ = ["DATASETS", "build_dataset", "split_names"]

# dataset_name -> class; the names are tal_lab.config.DATASET_NAMES (a test keeps them equal).
DATASETS: dict[str, type[ActionFormerDataset]] = {
    "thumos": ThumosDataset,
    "synthetic": SyntheticDataset,
    "anet": ActivityNetDataset,
    "epic": EpicKitchensDataset,
    "ego4d": Ego4DDataset,
    "hacs": HacsDataset,
}


def split_names(cfg: Mapping[str, Any], split: str) -> list[str]:
    """The subsets of ``split`` ('train' -> cfg['train_split'], 'val' -> cfg['val_split'])."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    names = cfg["train_split"] if split == "train" else cfg["val_split"]
    return [names] if isinstance(names, str) else list(names)


def build_dataset(
    cfg: Mapping[str, Any], split: str, is_training: bool | None = None, strict: bool = False
) -> ActionFormerDataset:
    """The dataset of a full config (``tal_lab.config.load_config``) for 'train' or 'val'.

    ``is_training`` defaults to ``split == 'train'``; the truncation seed is
    ``cfg['init_rand_seed']``.
    """
    name = cfg["dataset_name"]
    if name not in DATASETS:
        raise ValueError(f"dataset_name {name!r} is not one of {sorted(DATASETS)}")
    training = (split == "train") if is_training is None else is_training
    return DATASETS[name](cfg["dataset"], split_names(cfg, split), training,
                          seed=int(cfg.get("init_rand_seed", 0)), strict=strict)
