"""Feature files: path convention, reading ``.npy`` / ``.npz``, and their checks.

ActionFormer's layout: one file per video, ``{feat_folder}/{file_prefix}{video_id}{file_ext}``,
holding a (T, C) array: ``.npy`` for THUMOS14, ActivityNet and Ego4D, ``.npz`` with the array
under key ``feats`` for EPIC-Kitchens. TriDet's HACS SlowFast files are pickles
(:mod:`tal_lab.data.pickled_features`, reader ``slowfast_pickle``). Where a dataset keeps which
file is :mod:`tal_lab.data.layout`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from tal_lab.data.errors import Problem
from tal_lab.data.pickled_features import read_slowfast_pickle

__all__ = ["feature_path", "read_features", "feature_shape", "check_features", "channels_first", "NPZ_KEY",
           "Reader", "READERS"]

# How a feature file is read: a numpy array (.npy, or .npz under NPZ_KEY), or TriDet's HACS
# SlowFast pickle.
Reader = Literal["array", "slowfast_pickle"]
READERS: tuple[Reader, ...] = ("array", "slowfast_pickle")

# The array name inside EPIC-Kitchens' .npz feature files (ActionFormer's epic dataset).
NPZ_KEY = "feats"
# Time steps transposed per block by channels_first: a (64, C) float32 block stays in cache,
# which makes the (T, C) -> (C, T) copy about 5x faster than numpy's one-shot transpose at
# THUMOS14 shapes (2048 channels; measured on the 2-core dev machine).
TRANSPOSE_BLOCK_STEPS = 64


def feature_path(feat_folder: str | Path, file_prefix: str | None, video_id: str, file_ext: str) -> Path:
    """``{feat_folder}/{file_prefix}{video_id}{file_ext}`` (a null prefix is empty)."""
    return Path(feat_folder) / f"{file_prefix or ''}{video_id}{file_ext}"


def _load_raw(path: Path, mmap: bool, reader: Reader) -> np.ndarray:
    if reader == "slowfast_pickle":
        return read_slowfast_pickle(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if NPZ_KEY not in archive.files:
                raise KeyError(f"has no array '{NPZ_KEY}' (arrays: {archive.files})")
            return archive[NPZ_KEY]
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def read_features(
    path: Path, video_id: str, input_dim: int | None, reader: Reader = "array"
) -> tuple[np.ndarray | None, list[Problem]]:
    """Read and check one feature file.

    Args:
        input_dim: the channels the file must hold; None when only the channels of several
            files together are known (Ego4D's concatenated folders), checked by the caller.

    Returns:
        The (T, C) float32 array, or None when the file cannot be used, and the problems found
        (missing or unreadable file, not 2-D, zero length, C != input_dim, NaN or inf values).

    Shapes:
        returned array: (T, C) with C == input_dim.
    """
    array, problems = _open(path, video_id, mmap=False, reader=reader)
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


def feature_shape(
    path: Path, video_id: str, reader: Reader = "array"
) -> tuple[tuple[int, ...] | None, list[Problem]]:
    """The stored array's shape without reading its values (memory-mapped for ``.npy``)."""
    array, problems = _open(path, video_id, mmap=True, reader=reader)
    return (None if array is None else tuple(array.shape)), problems


def check_features(
    path: Path, video_id: str, input_dim: int | None, check_values: bool, reader: Reader = "array"
) -> tuple[tuple[int, int] | None, list[Problem]]:
    """Check one file as ``validate`` does; returns its (T, C) shape (None if unusable) and problems.

    A file whose values are bad (NaN) but whose shape is usable still gives its shape, so that
    the length check covers it.
    """
    if check_values:
        feats, problems = read_features(path, video_id, input_dim, reader)
        if feats is not None:
            return (int(feats.shape[0]), int(feats.shape[1])), problems
        shape, _ = feature_shape(path, video_id, reader)
    else:
        shape, problems = feature_shape(path, video_id, reader)
        if shape is not None:
            problems += _check_shape(shape, path, video_id, input_dim)
    usable = shape is not None and len(shape) == 2 and shape[0] > 0
    return ((int(shape[0]), int(shape[1])) if usable else None), problems  # type: ignore[index]


def _open(path: Path, video_id: str, mmap: bool, reader: Reader) -> tuple[np.ndarray | None, list[Problem]]:
    if not path.is_file():
        return None, [Problem("error", "missing_file", str(path), video_id, "feature file does not exist")]
    try:
        return _load_raw(path, mmap, reader), []
    except KeyError as err:
        return None, [Problem("error", "npz_key", str(path), video_id, str(err.args[0]))]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        kind = "HACS SlowFast pickle" if reader == "slowfast_pickle" else "numpy array"
        return None, [Problem("error", "unreadable", str(path), video_id,
                              f"feature file is not a readable {kind}: {err}")]


def _check_shape(shape: tuple[int, ...], path: Path, video_id: str, input_dim: int | None) -> list[Problem]:
    if len(shape) != 2:
        return [Problem("error", "ndim", str(path), video_id,
                        f"features must be a (T, C) array, got shape {shape}")]
    problems = []
    if shape[0] == 0:
        problems.append(Problem("error", "zero_length", str(path), video_id,
                                f"zero-length features (shape {shape})"))
    if input_dim is not None and shape[1] != input_dim:
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
