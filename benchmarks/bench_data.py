"""Items per second through the DataLoader at THUMOS14 shapes, with and without workers.

Writes a temporary synthetic folder shaped like THUMOS14's training split (2048-d I3D-like
features at stride 4, real video lengths; a subset of the 200 videos to keep it quick), then
times full passes of the training loader (truncation to max_seq_len 2304, batch 2) and the
evaluation loader (whole videos, batch 1) with 0, 1 and 2 workers; prints the median over
repeats. Features are read from disk every time (lazy loading), so this measures disk reads
(page cache after the first pass), the NaN check and truncation.

Usage: python benchmarks/bench_data.py [--videos 40] [--repeats 3] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tal_lab.config import load_config
from tal_lab.data import build_dataset, generate_synthetic, make_data_loader
from tal_lab.data.synthetic_spec import SyntheticPreset


def _items_per_second(loader: torch.utils.data.DataLoader, repeats: int) -> float:
    rates = []
    next(iter(loader))  # start persistent workers outside the timing
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(batch) for batch in loader)
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=40, help="THUMOS14-length training videos to write")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        preset = SyntheticPreset("bench", args.videos, 1, None, 2048, 2304)
        start = time.perf_counter()
        config = generate_synthetic(Path(tmp), preset, seed=0)
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "features").iterdir()) / 2**20
        print(f"wrote {args.videos + 1} videos, {size_mb:.0f} MiB, in {time.perf_counter() - start:.1f} s")
        cfg = load_config(config)
        train_set = build_dataset(cfg, "train")
        eval_set = build_dataset(cfg, "train", is_training=False)
        print(f"{'loader':<12}{'workers':>8}{'items/s':>10}")
        for workers in args.workers:
            for name, dataset, training, batch in (("train b=2", train_set, True, 2), ("eval b=1", eval_set, False, 1)):
                loader = make_data_loader(dataset, training, batch, workers, seed=0)
                print(f"{name:<12}{workers:>8}{_items_per_second(loader, args.repeats):>10.1f}", flush=True)
                del loader


if __name__ == "__main__":
    main()
