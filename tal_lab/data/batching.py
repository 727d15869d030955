"""Batching: the collate function (a list of video dicts) and padding to the model's input.

ActionFormer batches trivially: the DataLoader returns the list of video dicts and the model
pads it. :func:`collate_videos` is that collator (with a check that catches a dataset
returning something else); :func:`pad_videos` is the padding step the detector runs: the
length comes from the detector's :class:`~tal_lab.models.padding.PaddingPolicy` (built from
the config), the padding from :func:`tal_lab.core.structures.pad_batch`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor

from tal_lab.core.structures import pad_batch
from tal_lab.models.padding import PaddingPolicy

__all__ = ["VIDEO_KEYS", "collate_videos", "pad_videos"]

# The keys of the video dict every dataset returns and the detector reads.
VIDEO_KEYS = ("video_id", "feats", "segments", "labels", "fps", "duration", "feat_stride", "feat_num_frames")


def collate_videos(batch: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the batch as a list of video dicts (ActionFormer's trivial batch collator).

    Raises:
        ValueError: an item is not a video dict (names the missing keys).
    """
    videos = []
    for i, item in enumerate(batch):
        missing = [k for k in VIDEO_KEYS if not isinstance(item, Mapping) or k not in item]
        if missing:
            raise ValueError(f"batch item {i} is not a video dict: missing keys {missing}")
        videos.append(dict(item))
    return videos


def pad_videos(
    videos: Sequence[Mapping[str, Any]],
    model_cfg: Mapping[str, Any],
    training: bool,
) -> tuple[Tensor, Tensor]:
    """Pad a list of video dicts into the batch the detector builds of them.

    Args:
        model_cfg: a resolved config's ``model`` section (its padding: max_seq_len, the pyramid,
            train_padding, eval_padding; see :class:`~tal_lab.models.padding.PaddingPolicy`).
        training: pad as a training batch (``train_padding``), else as inference does
            (``eval_padding``).

    Raises:
        ValueError: a training video longer than max_seq_len, or inference videos that the
            detector pads in separate batches (pad each group of ``PaddingPolicy.eval_groups``).

    Shapes:
        returns feats (B, C, T_pad) float32 and masks (B, 1, T_pad) bool (True = valid step).
    """
    feats = [v["feats"] for v in videos]
    length = PaddingPolicy.from_config(model_cfg).batch_length([f.shape[-1] for f in feats], training)
    return pad_batch(feats, length)
