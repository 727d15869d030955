"""Atomic checkpoint writes, the previous checkpoint kept beside the last, and the random-state
capture that makes resuming exact."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tal_lab.engine.checkpoints.training_state import (
    atomic_torch_save, capture_rng_state, load_resumable_checkpoint, load_training_checkpoint, previous_checkpoint_path,
    restore_rng_state)


def _draws(loader: DataLoader) -> tuple:
    return (random.random(), float(np.random.rand()), float(torch.rand(1)), [b.tolist() for b in loader])


def test_rng_state_round_trip_reproduces_every_generator(tmp_path: Path) -> None:
    loader = DataLoader(list(range(10)), batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(3))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _draws(loader)  # move every generator away from its seed
    state = capture_rng_state(loader)
    # The state survives a weights_only round trip (what resuming reads).
    atomic_torch_save({"state_dict": {}, "rng": state}, tmp_path / "ck.pt")
    loaded = load_training_checkpoint(tmp_path / "ck.pt")["rng"]
    expected = _draws(loader)
    restore_rng_state(loaded, loader)
    assert _draws(loader) == expected


def test_atomic_save_keeps_the_previous_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    atomic_torch_save({"state_dict": {"w": torch.ones(2)}, "epoch": 0}, path)

    class Unpicklable:
        def __reduce__(self):  # noqa: D105
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"state_dict": {}, "bad": Unpicklable()}, path)
    assert load_training_checkpoint(path)["epoch"] == 0
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left


def test_loading_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_training_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_training_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="state_dict"):
        load_training_checkpoint(tmp_path / "other.pt")


def _epoch(path: Path) -> int:
    return int(load_training_checkpoint(path)["epoch"])


def test_keep_previous_rotates_the_replaced_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    previous = previous_checkpoint_path(path)
    assert previous == tmp_path / "last.prev.pt"
    atomic_torch_save({"state_dict": {}, "epoch": 0}, path, keep_previous=True)
    assert _epoch(path) == 0 and not previous.exists()
    atomic_torch_save({"state_dict": {}, "epoch": 1}, path, keep_previous=True)
    atomic_torch_save({"state_dict": {}, "epoch": 2}, path, keep_previous=True)
    assert (_epoch(path), _epoch(previous)) == (2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]  # no temporary file left
    path.write_bytes(path.read_bytes()[:100])  # a damaged last.pt leaves its own copy alone
    assert _epoch(previous) == 1


def test_resuming_falls_back_to_the_previous_checkpoint_with_a_warning(tmp_path: Path) -> None:
    path, previous = tmp_path / "last.pt", tmp_path / "last.prev.pt"
    atomic_torch_save({"state_dict": {}, "epoch": 0, "epochs_done": 1}, path, keep_previous=True)
    atomic_torch_save({"state_dict": {}, "epoch": 1, "epochs_done": 2}, path, keep_previous=True)
    state, used = load_resumable_checkpoint(path)
    assert (state["epochs_done"], used) == (2, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(RuntimeWarning, match=r"last\.pt is not readable .* previous checkpoint .*last\.prev\.pt "
                                            r"\(1 epochs done\) instead"):
        state, used = load_resumable_checkpoint(path)
    assert (state["epochs_done"], used) == (1, previous)
    path.unlink()  # killed between the two renames of an older scheme, or deleted: the same fallback
    with pytest.warns(RuntimeWarning, match="not readable"):
        assert load_resumable_checkpoint(path)[1] == previous
    previous.write_bytes(b"garbage")
    with pytest.raises(ValueError,
                       match=r"(?s)last\.pt \(checkpoint not found.* and the previous checkpoint .*both unreadable"):
        load_resumable_checkpoint(path)
    previous.unlink()
    with pytest.raises(FileNotFoundError, match="last.pt"):
        load_resumable_checkpoint(path)
