"""HACS SlowFast feature files as TriDet reads them: pickles of torch tensors, opened safely.

TriDet's ``libs/datasets/hacs.py`` (commit 764b816, ``dataset.backbone_type: slowfast``) reads
each video's ``.pkl`` with ``np.load(..., allow_pickle=True)``: a pickled dict holding
``slow_feature`` and ``fast_feature``, torch tensors of shape (1, C_slow, T) and (1, C_fast, T),
which it concatenates along channels and transposes to (T, C_slow + C_fast) (2304 channels for
the published features).

An ordinary unpickler runs whatever code a file names. :class:`TensorUnpickler` resolves only
the few globals a pickle of tensors, numpy arrays and dicts needs, and loads the storages that
pickled tensors embed with ``torch.load(..., weights_only=True)`` (torch's own hook for them
uses ``weights_only=False``); any other global is refused with an error naming it.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["SLOWFAST_KEYS", "TensorUnpickler", "load_tensor_pickle", "read_slowfast_pickle"]

# The arrays of a TriDet HACS SlowFast file, concatenated along channels in this order.
SLOWFAST_KEYS = ("slow_feature", "fast_feature")


def _storage_from_bytes(data: bytes) -> Any:
    """A tensor storage embedded in a pickle, read without running code from it."""
    return torch.load(io.BytesIO(data), weights_only=True)


# numpy's array constructor for pickles; its module is numpy.core (numpy 1) or numpy._core (numpy 2).
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
# What pickles of tensors / arrays / dicts name, and nothing else.
_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
}


class TensorUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds tensors, numpy arrays and plain containers."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}': a feature file may only hold tensors, arrays "
                "and dicts") from None


def load_tensor_pickle(path: Path) -> Any:
    """The object pickled in ``path``, rebuilt by :class:`TensorUnpickler`."""
    with open(path, "rb") as handle:
        return TensorUnpickler(handle).load()


def _as_tensor(value: Any, key: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if not torch.is_tensor(value):
        raise ValueError(f"'{key}' is a {type(value).__name__}, not a tensor")
    return value


def read_slowfast_pickle(path: Path) -> np.ndarray:
    """The (T, C) float32 features of one HACS SlowFast file (TriDet's layout).

    Shapes:
        file: {'slow_feature': (1, C_s, T), 'fast_feature': (1, C_f, T)} -> returns (T, C_s + C_f).

    Raises:
        ValueError: not a dict with both keys, not tensors, or shapes that do not concatenate.
        pickle.UnpicklingError, EOFError: not a readable pickle (or one naming other globals).
    """
    content = load_tensor_pickle(path)
    if not isinstance(content, dict) or any(k not in content for k in SLOWFAST_KEYS):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"expected a dict with {list(SLOWFAST_KEYS)} (TriDet's HACS SlowFast format), got {found}")
    parts = [_as_tensor(content[k], k) for k in SLOWFAST_KEYS]
    shapes = [tuple(p.shape) for p in parts]
    if any(len(s) != 3 or s[0] != 1 for s in shapes) or shapes[0][2] != shapes[1][2]:
        raise ValueError(f"'slow_feature' / 'fast_feature' must be (1, C, T) with the same T, got {shapes}")
    feats = torch.cat(parts, dim=1)[0].transpose(0, 1)  # (1, C, T) -> (T, C)
    return feats.to(torch.float32).contiguous().numpy()
