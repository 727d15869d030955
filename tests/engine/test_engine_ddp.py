"""Two gloo processes on the CPU train through the public ``train`` as under torchrun."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from tal_lab.data import generate_synthetic
from tal_lab.engine.checkpoints.training_state import load_training_checkpoint

from tiny import FAST_OVERRIDES

TINY = [*FAST_OVERRIDES, "opt.epochs=1", "opt.warmup_epochs=1", "loader.num_workers=0", "engine.progress=false"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, config: str, root: str) -> None:
    # What torchrun sets for each process.
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from tal_lab.engine import Trainer, train

    fit = Trainer.fit

    def fit_and_dump(self: Trainer, stop_after_epochs: int | None = None) -> object:
        out = fit(self, stop_after_epochs)
        torch.save({"weights": self.detector.state_dict(), "steps": self.global_step,
                    "videos": len(self.train_loader.sampler)}, Path(root) / f"rank{rank}.pt")
        return out

    Trainer.fit = fit_and_dump  # type: ignore[method-assign]
    train(config, root, "ddp")


def test_two_gloo_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    config = generate_synthetic(tmp_path / "data", preset="tiny", seed=0)
    from tal_lab.config import dump_config, load_config

    tiny = tmp_path / "tiny.yaml"
    dump_config(load_config(config, TINY), tiny)
    root = tmp_path / "runs"
    mp.spawn(_worker, args=(2, _free_port(), str(tiny), str(root)), nprocs=2, join=True)

    ranks = [torch.load(root / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 6 training videos, batch 2 split over 2 ranks: 3 videos and 3 steps of 1 video per epoch each.
    assert [r["videos"] for r in ranks] == [3, 3] and [r["steps"] for r in ranks] == [6, 6]
    saved = load_training_checkpoint(root / "ddp" / "checkpoints" / "last.pt")["state_dict"]
    for name, value in ranks[0]["weights"].items():
        assert torch.equal(value, ranks[1]["weights"][name]), name
        assert torch.equal(value, saved[name]), name
    info = json.loads((root / "ddp" / "run.json").read_text())
    assert info["status"] == "finished" and info["world_size"] == 2 and info["device"] == "cpu"
    assert (root / "ddp" / "results.json").is_file()
