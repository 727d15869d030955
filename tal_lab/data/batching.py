"""Batching: the collate function (a list of video dicts) and padding to the model's input.

ActionFormer batches trivially: the DataLoader returns the list of video dicts and the model
pads it. :func:`collate_videos` is that collator (with a check that catches a dataset
returning something else); :func:`pad_videos` is the padding step the detector runs, written
with :func:`tal_lab.core.structures.padded_length` / :func:`~tal_lab.core.structures.pad_batch`:
training batches are padded to ``max_seq_len``, evaluation batches to ``max_seq_len`` or the
next multiple of the pyramid's divisor (``tal_lab.config.max_div_factor``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor

from tal_lab.config import max_div_factor
from tal_lab.core.structures import pad_batch, padded_length

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
    """Pad a list of video dicts into the detector's input batch.

    Args:
        model_cfg: the config's ``model`` section (max_seq_len, backbone_arch, scale_factor,
            n_mha_win_size, backbone_type, eval_padding).
        training: pad to ``max_seq_len`` (videos were truncated to it).

    Shapes:
        returns feats (B, C, T_pad) float32 and masks (B, 1, T_pad) bool (True = valid step).
    """
    feats = [v["feats"] for v in videos]
    length = padded_length(
        [f.shape[-1] for f in feats],
        int(model_cfg["max_seq_len"]),
        max_div_factor(model_cfg),
        training,
        pad_to_max_seq_len=model_cfg.get("eval_padding", "reference") == "reference",
    )
    return pad_batch(feats, length)
