"""Training checkpoints: written atomically, resumable bit for bit on CPU.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True`` (only tensors and plain Python values inside, so loading one never runs
code from the file). Its keys extend ActionFormer's, so ActionFormer's own loader and
``tal_lab.engine.checkpoints.official.load_checkpoint`` read the weights:

``epoch`` (0-based index of the last completed epoch, as the reference stores it),
``epochs_done`` (``epoch + 1``), ``state_dict``, ``state_dict_ema`` (absent without EMA),
``optimizer``, ``scheduler``, ``grad_scaler`` (fp16 only), ``loss_normalizer`` (the
detector's moving positive-count normaliser, absent on models without one), ``rng`` (Python,
NumPy, torch CPU / CUDA generators and the training loader's generator), ``tal_lab_version``.

``epoch_record`` (the epoch's log record, so that a resumed run can finish an epoch whose
evaluation did not complete; None in checkpoints of other origins).

Writes go to a temporary file in the same folder, then ``os.replace``: a run killed while
saving keeps its previous checkpoint intact. With ``keep_previous`` (the trainer's ``last.pt``)
the checkpoint being replaced is kept as ``last.prev.pt`` (hard-linked, or copied where links
are not supported, then moved into place): a checkpoint damaged after it was written
(a truncated copy, a disk error) costs one epoch, not the run, because
:func:`load_resumable_checkpoint` falls back to it.
"""

from __future__ import annotations

import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = [
    "atomic_torch_save",
    "previous_checkpoint_path",
    "load_training_checkpoint",
    "load_resumable_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "loader_generators",
]


def previous_checkpoint_path(path: str | Path) -> Path:
    """Where ``atomic_torch_save(..., keep_previous=True)`` keeps the replaced checkpoint:
    ``last.pt`` -> ``last.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _keep_as_previous(path: Path, tmp_previous: Path) -> None:
    """Put the current ``path`` at its previous-checkpoint path, never leaving ``path`` missing."""
    try:
        os.link(path, tmp_previous)
    except OSError:  # file systems without hard links
        shutil.copyfile(path, tmp_previous)
    os.replace(tmp_previous, previous_checkpoint_path(path))


def atomic_torch_save(obj: Any, path: str | Path, keep_previous: bool = False) -> None:
    """``torch.save`` to ``path`` through a temporary file and ``os.replace``; with
    ``keep_previous`` the file it replaces becomes :func:`previous_checkpoint_path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_previous = path.with_name(f".{path.name}.{os.getpid()}.prev.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous and path.is_file():
            _keep_as_previous(path, tmp_previous)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp_previous):
            if leftover.exists():
                leftover.unlink()


def load_training_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the trainer (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a checkpoint dict with ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"{path}: not a readable tal_lab / ActionFormer checkpoint ({err})") from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"{path}: not a checkpoint (expected a dict with 'state_dict')")
    return state


def load_resumable_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], Path]:
    """Read ``path`` to resume from, or, when it is missing or unreadable, the previous
    checkpoint beside it (:func:`previous_checkpoint_path`), with a warning naming both.

    Returns:
        (checkpoint dict, the file it was read from).

    Raises:
        FileNotFoundError: neither file exists.
        ValueError: neither file is readable (the message names both and why).
    """
    path = Path(path)
    previous = previous_checkpoint_path(path)
    try:
        return load_training_checkpoint(path, map_location), path
    except (FileNotFoundError, ValueError) as err:
        if not previous.is_file():
            raise
        first_error = err
    try:
        state = load_training_checkpoint(previous, map_location)
    except ValueError as err:
        raise ValueError(f"cannot resume: {path} ({first_error}) and the previous checkpoint {previous} ({err}) "
                         "are both unreadable") from err
    warnings.warn(f"{path} is not readable ({first_error}); resuming from the previous checkpoint {previous} "
                  f"({state.get('epochs_done', '?')} epochs done) instead", RuntimeWarning, stacklevel=2)
    return state, previous


def loader_generators(loader: DataLoader) -> dict[str, torch.Generator]:
    """The torch generators that decide a loader's shuffling and worker seeds, by role."""
    found: dict[str, torch.Generator] = {}
    if getattr(loader, "generator", None) is not None:
        found["loader"] = loader.generator
    sampler_gen = getattr(getattr(loader, "sampler", None), "generator", None)
    if sampler_gen is not None and sampler_gen is not found.get("loader"):
        found["sampler"] = sampler_gen
    batch_sampler = getattr(loader, "batch_sampler", None)
    inner_gen = getattr(getattr(batch_sampler, "sampler", None), "generator", None)
    if inner_gen is not None and all(inner_gen is not g for g in found.values()):
        found["batch_sampler"] = inner_gen
    return found


def capture_rng_state(loader: DataLoader | None = None) -> dict[str, Any]:
    """Every random generator training touches, as plain values and tensors."""
    version, mt_state, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(mt_state), "gauss_next": gauss},
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": {},
    }
    if loader is not None:
        state["loader"] = {role: gen.get_state() for role, gen in loader_generators(loader).items()}
    return state


def restore_rng_state(state: Mapping[str, Any], loader: DataLoader | None = None) -> None:
    """Put back the generators saved by :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader is not None:
        generators = loader_generators(loader)
        for role, gen_state in state.get("loader", {}).items():
            if role in generators:
                generators[role].set_state(gen_state)
