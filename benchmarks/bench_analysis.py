"""Benchmark: the analysis library at THUMOS14 shapes (CPU).

Prints median wall times of

* the feature-diversity probe (:func:`tal_lab.analysis.features.probe_diversity`: backbone, neck
  and every block captured by hooks, all metrics, per-step cosine rows) per video of T 2304
  (2048-d input, 512-d model) for each backbone / neck configuration, and of the metrics alone
  on one (512, 2304) map;
* the complexity count of each configuration (first call; cached calls are dictionary hits);
* timeline matching on the THUMOS14-size synthetic prediction set (212 videos x 200);
* Table I from a synthetic run store of 3 seeds per configuration (without complexity).

Usage: ``python benchmarks/bench_analysis.py [--repeats 3] [--videos 2] [--threads 2]``
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from tal_lab.analysis import complexity as cx
from tal_lab.study import paper_results as paper
from tal_lab.analysis.features import diversity_metrics, probe_diversity
from tal_lab.study.tables import table_configurations
from tal_lab.analysis.timelines import match_detections
from tal_lab.config import PAPER_CONFIGURATIONS, load_config, paper_configuration
from tal_lab.models import build_detector
from timing import median_seconds  # benchmarks/timing.py, beside this script

THUMOS = {"dataset": {"input_dim": 2048, "num_classes": 20, "max_seq_len": 2304}, "model": {"n_mha_win_size": 19}}




def _synthetic_store(seeds: int = 3) -> pd.DataFrame:
    rows = []
    for key, c in PAPER_CONFIGURATIONS.items():
        for s in range(seeds):
            row = {"run_id": f"{key}{s}", "name": f"{key}{s}", "path": None, "status": "finished",
                   "dataset": "synthetic", "data_kind": "synthetic", "data_preset": "quick", "data_seed": 0,
                   "seed": s, "backbone": c["backbone_type"], "neck": c["fpn_type"], "head": "actionformer",
                   "loss_weight": 1.0, "epochs": 12, "weights": "ema", "params": 1, "sec_per_epoch": 60.0}
            row.update({m: v / 2 + s for m, v in paper.TABLE1[key].items()})
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=2, help="videos per probe call")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")

    feats = torch.randn(1, 512, 2304)
    mask = torch.ones(1, 1, 2304, dtype=torch.bool)
    mask[..., 1800:] = False
    sec = median_seconds(lambda: diversity_metrics(feats, mask), args.repeats)
    print(f"diversity metrics, one (512, 2304) map, 1800 valid steps: {sec * 1e3:.0f} ms")

    videos = {f"v{i}": torch.randn(2048, 2304 - 400 * i) for i in range(args.videos)}
    base = load_config(THUMOS)
    for key in PAPER_CONFIGURATIONS:
        cfg = paper_configuration(key, base)
        detector = build_detector(cfg)
        sec = median_seconds(lambda: probe_diversity(detector, videos, cfg=cfg, batch_size=args.videos),
                          args.repeats, warmup=False)
        start = time.perf_counter()
        count = cx.model_complexity(cfg)
        first = time.perf_counter() - start
        print(f"config {key:8s} probe {sec / args.videos:6.2f} s/video | params {count.params / 1e6:6.2f} M, "
              f"{count.gflops:6.1f} GFLOPs ({count.gmacs:5.1f} GMACs) per video at T 2304, "
              f"counted in {first:.2f} s")

    rng = np.random.default_rng(0)
    n_gt, n_pred = 212 * 16, 212 * 200
    vids = rng.integers(0, 212, size=n_gt)
    start_sec = rng.uniform(0, 200, size=n_gt)
    gt = pd.DataFrame({"video-id": [f"v{v}" for v in vids], "t-start": start_sec,
                       "t-end": start_sec + rng.uniform(1, 20, size=n_gt), "label": rng.integers(0, 20, size=n_gt)})
    pv = rng.integers(0, 212, size=n_pred)
    ps = rng.uniform(0, 200, size=n_pred)
    preds = pd.DataFrame({"video-id": [f"v{v}" for v in pv], "t-start": ps, "t-end": ps + rng.uniform(1, 20, n_pred),
                          "label": rng.integers(0, 20, size=n_pred), "score": rng.uniform(size=n_pred)})
    sec = median_seconds(lambda: match_detections(gt, preds, tiou=0.5), args.repeats)
    print(f"match_detections, {n_gt} GT x {n_pred} predictions: {sec:.2f} s")
    store = _synthetic_store()
    sec = median_seconds(lambda: table_configurations(store, complexity=False).markdown_text(), args.repeats)
    print(f"Table I from {len(store)} runs (no complexity): {sec * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
