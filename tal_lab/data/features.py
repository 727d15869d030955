"""Feature files: path convention, reading ``.npy`` / ``.npz``, and their checks.

ActionFormer's layout: one file per video, ``{feat_folder}/{file_prefix}{video_id}{file_ext}``,
holding a (T, C) array: ``.npy`` for THUMOS14 and ActivityNet, ``.npz`` with the array under
key ``feats`` for EPIC-Kitchens.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from tal_lab.data.errors import Problem

__all__ = ["feature_path", "read_features", "feature_shape", "check_features", "channels_first", "NPZ_KEY"]

# The array name inside EPIC-Kitchens' .npz feature files (ActionFormer's epic dataset).
NPZ_KEY = "feats"
# Time steps transposed per block by channels_first: a (64, C) float32 block stays in cache,
# which makes the (T, C) -> (C, T) copy about 5x faster than numpy's one-shot transpose at
# THUMOS14 shapes (2048 channels; measured on the 2-core dev machine).
TRANSPOSE_BLOCK_STEPS = 64


def feature_path(feat_folder: str | Path, file_prefix: str | None, video_id: str, file_ext: str) -> Path:
    """``{feat_folder}/{file_prefix}{video_id}{file_ext}`` (a null prefix is empty)."""
    return Path(feat_folder) / f"{file_prefix or ''}{video_id}{file_ext}"


def _load_raw(path: Path, mmap: bool) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if NPZ_KEY not in archive.files:
                raise KeyError(f"has no array '{NPZ_KEY}' (arrays: {archive.files})")
            return archive[NPZ_KEY]
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def read_features(path: Path, video_id: str, input_dim: int) -> tuple[np.ndarray | None, list[Problem]]:
    """Read and check one feature file.

    Returns:
        The (T, C) float32 array, or None when the file cannot be used, and the problems found
        (missing or unreadable file, not 2-D, zero length, C != input_dim, NaN or inf values).

    Shapes:
        returned array: (T, C) with C == input_dim.
    """
    array, problems = _open(path, video_id, mmap=False)
    if array is None:
        return None, problems
    problems += _check_shape(array.shape, path, video_id, input_dim)
    if problems:
        return None, problems
    feats = np.asarray(array, dtype=np.float32)
    problems += _check_values(feats, path, video_id)
    return (None if problems else feats), problems


def channels_first(feats: np.ndarray) -> torch.Tensor:
    """Copy (T, C) features into a contiguous (C, T) float32 tensor, block by block.

    Shapes:
        feats: (T, C) -> returns (C, T).
    """
    steps, channels = feats.shape
    out = torch.empty((channels, steps), dtype=torch.float32)
    view = out.numpy()
    for start in range(0, steps, TRANSPOSE_BLOCK_STEPS):
        view[:, start:start + TRANSPOSE_BLOCK_STEPS] = feats[start:start + TRANSPOSE_BLOCK_STEPS].T
    return out


def feature_shape(path: Path, video_id: str) -> tuple[tuple[int, ...] | None, list[Problem]]:
    """The stored array's shape without reading its values (memory-mapped for ``.npy``)."""
    array, problems = _open(path, video_id, mmap=True)
    return (None if array is None else tuple(array.shape)), problems


def check_features(path: Path, video_id: str, input_dim: int, check_values: bool) -> tuple[int | None, list[Problem]]:
    """Check one file as ``validate`` does; returns its length T (None if unusable) and problems."""
    if check_values:
        feats, problems = read_features(path, video_id, input_dim)
        if feats is not None:
            return feats.shape[0], problems
        shape, _ = feature_shape(path, video_id)
        usable = shape is not None and len(shape) == 2 and shape[0] > 0
        return (shape[0] if usable else None), problems
    shape, problems = feature_shape(path, video_id)
    if shape is None:
        return None, problems
    problems += _check_shape(shape, path, video_id, input_dim)
    usable = len(shape) == 2 and shape[0] > 0
    return (shape[0] if usable else None), problems


def _open(path: Path, video_id: str, mmap: bool) -> tuple[np.ndarray | None, list[Problem]]:
    if not path.is_file():
        return None, [Problem("error", "missing_file", str(path), video_id, "feature file does not exist")]
    try:
        return _load_raw(path, mmap), []
    except KeyError as err:
        return None, [Problem("error", "npz_key", str(path), video_id, str(err.args[0]))]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return None, [Problem("error", "unreadable", str(path), video_id,
                              f"feature file is not a readable numpy array: {err}")]


def _check_shape(shape: tuple[int, ...], path: Path, video_id: str, input_dim: int) -> list[Problem]:
    if len(shape) != 2:
        return [Problem("error", "ndim", str(path), video_id,
                        f"features must be a (T, C) array, got shape {shape}")]
    problems = []
    if shape[0] == 0:
        problems.append(Problem("error", "zero_length", str(path), video_id,
                                f"zero-length features (shape {shape})"))
    if shape[1] != input_dim:
        problems.append(Problem("error", "dim", str(path), video_id,
                                f"feature dimension {shape[1]} differs from dataset.input_dim {input_dim} "
                                f"(shape {shape}; files hold (T, C) arrays)"))
    return problems


def _check_values(feats: np.ndarray, path: Path, video_id: str) -> list[Problem]:
    finite = np.isfinite(feats)
    if finite.all():
        return []
    num_nan = int(np.isnan(feats).sum())
    num_inf = int((~finite).sum()) - num_nan
    first_step = int(np.argwhere(~finite)[0, 0])
    return [Problem("error", "non_finite", str(path), video_id,
                    f"features hold {num_nan} NaN and {num_inf} infinite values (first at step {first_step})")]
