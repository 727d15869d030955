"""mAP bands of the synthetic benchmark: is the signal learnable, and is it the only signal?

For each seed: generate the preset (default ``quick``), train the original ActionFormer
configuration written beside it (``tal_lab.engine.api.train``) and read its average mAP; train
the same with ``snr 0`` (features are pure noise); and score chance-level predictions the same
way (``tal_lab.metrics.mean_average_precision``), over ``--draws`` random draws each:

* random: per test video, ``max_seg_num`` segments with uniform centres, lengths drawn from the
  training set's action lengths, uniform labels and scores;
* shuffled: the ``snr 0`` run's own detections with labels and scores permuted across all of
  them (its segments, with any information in its labels and scores removed).

mAP near zero is noisy (few instances per class), so the draws give the chance band. The
issue's acceptance: the original configuration is neither trivial nor saturated, and ``snr 0``
scores no better than chance.

Usage: python benchmarks/bench_data_signal.py [--seeds 0 1 2] [--preset quick] [--root /tmp/bands]
Prints average mAP (%) per seed and the band (min - max); several minutes per training on CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tal_lab.config import load_config
from tal_lab.data import generate_synthetic
from tal_lab.metrics import mean_average_precision, read_ground_truth_json


def random_predictions(json_file: Path, subset: str, per_video: int, seed: int) -> pd.DataFrame:
    """Random detections for every video of ``subset``, lengths drawn from the other subsets."""
    database = json.loads(json_file.read_text())["database"]
    lengths = np.asarray([a["segment"][1] - a["segment"][0] for v in database.values()
                          if v["subset"].lower() != subset.lower() for a in v["annotations"]])
    num_classes = 1 + max(a["label_id"] for v in database.values() for a in v["annotations"])
    rng = np.random.default_rng(seed)
    rows = []
    for video_id, video in database.items():
        if video["subset"].lower() != subset.lower():
            continue
        centre = rng.uniform(0, video["duration"], per_video)
        half = 0.5 * rng.choice(lengths, per_video)
        rows.append(pd.DataFrame({"video-id": video_id, "t-start": np.clip(centre - half, 0, None),
                                  "t-end": np.minimum(centre + half, video["duration"]),
                                  "label": rng.integers(num_classes, size=per_video),
                                  "score": rng.uniform(size=per_video)}))
    return pd.concat(rows, ignore_index=True)


def shuffled_predictions(detections: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Detections with their labels and scores permuted across all rows."""
    rng = np.random.default_rng(seed)
    out = detections.copy()
    out["label"] = rng.permutation(out["label"].to_numpy())
    out["score"] = rng.permutation(out["score"].to_numpy())
    return out


def trained_run(config: Path, root: Path, name: str) -> tuple[float, float, Path]:
    """Train one configuration; its average mAP (fraction), wall time (s) and run folder."""
    from tal_lab.engine.api import train

    start = time.perf_counter()
    run = Path(train(config, output_root=root, run_name=name, progress=False, resume=True))
    results = json.loads((run / "results.json").read_text())
    return float(_average(results)), time.perf_counter() - start, run


def _average(results: dict) -> float:
    for key in ("average_mAP", "avg_mAP"):
        if key in results:
            return results[key]
        if isinstance(results.get("eval"), dict) and key in results["eval"]:
            return results["eval"][key]
    raise KeyError(f"no average mAP in results.json (keys {sorted(results)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--root", type=Path, default=Path("/tmp/tal_lab_bands"))
    parser.add_argument("--skip-snr0", action="store_true", help="only the original configuration")
    parser.add_argument("--draws", type=int, default=10, help="random draws of each chance-level baseline")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared, busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        data = args.root / f"{args.preset}-s{seed}"
        config = generate_synthetic(data, args.preset, seed)
        cfg = load_config(config)
        json_file = Path(cfg["dataset"]["json_file"])
        subset = cfg["val_split"][0]
        gt = read_ground_truth_json(json_file, subset=subset)
        labels = list(range(int(cfg["dataset"]["num_classes"])))

        def score(preds: pd.DataFrame) -> float:
            return mean_average_precision(gt, preds, labels=labels).average_mAP

        per_video = int(cfg["test_cfg"]["max_seg_num"])
        randoms = [score(random_predictions(json_file, subset, per_video, 1000 * seed + k)) for k in range(args.draws)]
        original, seconds, _ = trained_run(config, args.root / "runs", f"original-s{seed}")
        row = {"seed": seed, "original": original, "seconds": seconds,
               "random_mean": float(np.mean(randoms)), "random_max": float(np.max(randoms))}
        if not args.skip_snr0:
            # The same videos and annotations (layout streams do not depend on snr), noise only.
            quiet = generate_synthetic(args.root / f"{args.preset}-s{seed}-snr0", args.preset, seed, {"snr": 0.0})
            row["snr0"], _, run = trained_run(quiet, args.root / "runs", f"snr0-s{seed}")
            detections = pd.read_csv(run / "detections.csv")
            shuffled = [score(shuffled_predictions(detections, k)) for k in range(args.draws)]
            row["shuffled_mean"], row["shuffled_max"] = float(np.mean(shuffled)), float(np.max(shuffled))
        rows.append(row)
        print({k: round(v, 1) if k in ("seed", "seconds") else round(100 * v, 2) for k, v in row.items()}, flush=True)
    frame = pd.DataFrame(rows).set_index("seed")
    pct = frame.drop(columns="seconds") * 100
    print(pct.round(2).to_string())
    print("band (min - max, average mAP %):", {c: (round(pct[c].min(), 2), round(pct[c].max(), 2)) for c in pct})
    print(f"median training + evaluation time: {frame['seconds'].median():.0f} s")


if __name__ == "__main__":
    main()
