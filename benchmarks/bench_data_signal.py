"""mAP bands of the synthetic benchmark: is the signal learnable, and is it the only signal?

For each seed: generate the preset (default ``quick``), train the original ActionFormer
configuration written beside it (``tal_lab.engine.api.train``) and read its average mAP; train
the same with ``snr 0`` (features are pure noise, independent of the annotations); and compare
that ``snr 0`` detector with chance-level detections scored exactly the same way
(``tal_lab.evaluation.mean_average_precision``, the same test GT, THUMOS14's tIoU 0.3:0.7), each
over ``--draws`` random draws (mean and max: mAP near zero is noisy, a few lucky hits in a rare
class move it by tenths of a point):

* uniform random: per test video as many detections as the detector makes, uniform labels and
  centres, lengths from all training actions;
* prior-matched random (``tal_lab.evaluation.baselines``): the same counts, labels from the training
  class frequencies, each duration from its class's training durations, positions uniform in
  the video, uniform scores: what the training labels teach, nothing about the video; and
  variants with more of the labels' prior: centres drawn from the training actions' relative
  positions in their videos; each class's *tuned length* (the length whose randomly placed
  segments match the most training instances) instead of its durations; then also labels in
  proportion to those expected matches (*tuned labels*) and each video's same-class segments
  spread over the video as NMS output is (no stacking);
* relocated: the ``snr 0`` detector's own detections (labels and lengths, so whatever label
  statistics it learnt) moved to random positions (spread) with uniform scores;
* fresh noise: the trained ``snr 0`` checkpoint evaluated again on ``--resample`` new draws of
  the test features' noise (same shapes and temporal correlation). If labels leaked into the
  ``snr 0`` features, the detector would score higher on its real test features than here.

Usage: python benchmarks/bench_data_signal.py [--seeds 0 1 2] [--preset quick] [--root DIR]
       [--skip-original] [--draws 200] [--resample 10]
Prints one table (average mAP %, mean / max of the draws); several minutes per training on CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from tal_lab.config import load_config
from tal_lab.data import generate_synthetic
from tal_lab.evaluation.baselines import (LabelPrior, detection_counts, prior_matched_predictions, relocated_predictions,
                                    uniform_random_predictions)
from tal_lab.data.synthetic import FEAT_STRIDE, NUM_FRAMES
from tal_lab.evaluation import mean_average_precision, read_ground_truth_json, read_video_info_json

# Independent random streams of the baselines' draws (np.random.default_rng([seed, stream, draw])).
STREAM_UNIFORM, STREAM_PRIOR, STREAM_RELOCATED, STREAM_NOISE, STREAM_POSITIONS, STREAM_TUNED, STREAM_ALL = range(7)
# The rows of the printed table: key of a seed's figures -> label (draws: '(n)' is appended).
ROWS = {
    "original": "original configuration",
    "snr0": "snr 0 (its test features)",
    "fresh_noise": "snr 0 on fresh noise",
    "uniform": "uniform random",
    "prior": "prior-matched random",
    "prior_positions": "  + training positions",
    "prior_tuned": "  + tuned lengths",
    "prior_all": "  + tuned lengths, tuned labels, spread",
    "relocated": "snr 0 relocated, spread",
}
# A finished run is returned at once by train(resume=True): below this, nothing was trained.
RUN_EXISTED_SEC = 10.0
# Bands in which the snr-0 detector's figure is ranked (share of the draws at or above it).
RANKED = {"prior": "prior-matched", "prior_all": "tuned, spread", "fresh_noise": "fresh noise"}


def trained_run(config: Path, root: Path, name: str) -> tuple[float, float, Path]:
    """Train one configuration (or return the finished run); average mAP (fraction), seconds, folder."""
    from tal_lab.engine.api import train

    start = time.perf_counter()
    run = Path(train(config, output_root=root, run_name=name, progress=False, resume=True))
    results = json.loads((run / "results.json").read_text())
    return float(results["average_mAP"]), time.perf_counter() - start, run


def write_fresh_noise(features: Path, out: Path, video_ids: list[str], rng: np.random.Generator) -> None:
    """New noise for each video, built as the generator builds it at ``snr 0``.

    Each feature averages its window's NUM_FRAMES / FEAT_STRIDE blocks of white noise (unit
    variance, correlation 0.75 / 0.5 / 0.25 at lags 1 / 2 / 3), with the shape of the video's
    existing feature file.
    """
    out.mkdir(parents=True, exist_ok=True)
    blocks_per_window = NUM_FRAMES // FEAT_STRIDE
    for video in video_ids:
        num_steps, dim = np.load(features / f"{video}.npy", mmap_mode="r").shape
        blocks = rng.standard_normal((num_steps + blocks_per_window - 1, dim), dtype=np.float32)
        feats = sum(blocks[j:j + num_steps] for j in range(blocks_per_window)) / np.float32(np.sqrt(blocks_per_window))
        np.save(out / f"{video}.npy", feats.astype(np.float32))


def fresh_noise_maps(run: Path, data: Path, video_ids: list[str], seed: int, draws: int) -> list[float]:
    """Average mAP (fraction) of a trained run's checkpoint on ``draws`` fresh noise draws of the test set."""
    from tal_lab.engine.api import evaluate

    folder = data.with_name(data.name + "-fresh-noise")
    out = []
    for k in range(draws):
        write_fresh_noise(data / "features", folder, video_ids, np.random.default_rng([seed, STREAM_NOISE, k]))
        result = evaluate(run / "config.yaml", run / "checkpoints" / "last.pt", progress=False,
                          overrides={"dataset": {"feat_folder": str(folder)}})
        out.append(float(result.summary()["average_mAP"]))
    return out


def band(score: Callable[[pd.DataFrame], float], draw: Callable[[np.random.Generator], pd.DataFrame],
         seed: int, stream: int, draws: int) -> list[float]:
    return [score(draw(np.random.default_rng([seed, stream, k]))) for k in range(draws)]


def seed_row(args: argparse.Namespace, seed: int) -> dict[str, object]:
    """Every figure of one seed (fractions; lists for the draws)."""
    row: dict[str, object] = {"seed": seed}
    if not args.skip_original:
        config = generate_synthetic(args.root / f"{args.preset}-s{seed}", args.preset, seed)
        row["original"], row["seconds"], _ = trained_run(config, args.root / "runs", f"original-s{seed}")
    # The same videos and annotations (layout streams do not depend on snr), noise only.
    data = args.root / f"{args.preset}-s{seed}-snr0"
    quiet = generate_synthetic(data, args.preset, seed, {"snr": 0.0})
    cfg = load_config(quiet)
    json_file = Path(cfg["dataset"]["json_file"])
    test_subset, train_subset = cfg["val_split"][0], cfg["train_split"][0]
    gt = read_ground_truth_json(json_file, subset=test_subset)
    videos_sec = read_video_info_json(json_file, subset=None)["duration"].to_dict()
    test_ids = list(read_video_info_json(json_file, subset=test_subset).index)
    train_gt = read_ground_truth_json(json_file, subset=train_subset)
    train_sec = read_video_info_json(json_file, subset=train_subset)["duration"].to_dict()
    labels = list(range(int(cfg["dataset"]["num_classes"])))

    def score(preds: pd.DataFrame) -> float:
        return mean_average_precision(gt, preds, labels=labels).average_mAP

    row["snr0"], seconds, run = trained_run(quiet, args.root / "runs", f"snr0-s{seed}")
    row.setdefault("seconds", seconds)
    detections = pd.read_csv(run / "detections.csv")
    counts = detection_counts(detections, test_ids)
    lengths_sec = (train_gt["t-end"] - train_gt["t-start"]).to_numpy()
    prior = LabelPrior.from_ground_truth(train_gt, train_sec)
    row["uniform"] = band(score, lambda rng: uniform_random_predictions(videos_sec, counts, len(labels), lengths_sec,
                                                                        rng), seed, STREAM_UNIFORM, args.draws)
    row["prior"] = band(score, lambda rng: prior_matched_predictions(prior, videos_sec, counts, rng),
                        seed, STREAM_PRIOR, args.draws)
    row["prior_positions"] = band(score, lambda rng: prior_matched_predictions(prior, videos_sec, counts, rng,
                                                                               position="prior"),
                                  seed, STREAM_POSITIONS, args.draws)
    row["prior_tuned"] = band(score, lambda rng: prior_matched_predictions(prior, videos_sec, counts, rng,
                                                                           duration="tuned"),
                              seed, STREAM_TUNED, args.draws)
    row["prior_all"] = band(score, lambda rng: prior_matched_predictions(prior, videos_sec, counts, rng,
                                                                         "spread", "tuned", "tuned"),
                            seed, STREAM_ALL, args.draws)
    row["relocated"] = band(score, lambda rng: relocated_predictions(detections, videos_sec, rng, "spread"),
                            seed, STREAM_RELOCATED, args.draws)
    if args.resample:
        row["fresh_noise"] = fresh_noise_maps(run, data, test_ids, seed, args.resample)
    return row


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def format_table(rows: list[dict[str, object]], draws: int, resample: int) -> str:
    """One line per figure, one column per seed: single figures as %, draws as 'mean / max' %."""
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        column = f"seed {row['seed']}"
        for key, name in ROWS.items():
            value = row.get(key)
            if isinstance(value, list):
                name = f"{name} ({resample if key == 'fresh_noise' else draws})"
                table.setdefault(name, {})[column] = f"{pct(float(np.mean(value)))} / {pct(max(value))}"
            elif value is not None:
                table.setdefault(name, {})[column] = pct(float(value))  # type: ignore[arg-type]
        # Where the snr-0 detector ranks: the share of each band's draws at or above it.
        for key, what in RANKED.items():
            if key in row:
                name = f"draws >= snr 0: {what}"
                table.setdefault(name, {})[column] = f"{np.mean(np.asarray(row[key]) >= row['snr0']):.0%}"
    return pd.DataFrame(table).T.fillna("").to_string()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--root", type=Path, default=Path("/tmp/tal_lab_bands"))
    parser.add_argument("--skip-original", action="store_true", help="only the snr-0 training and the baselines")
    parser.add_argument("--draws", type=int, default=200,
                        help="random draws of each chance-level baseline (~0.05 s each)")
    parser.add_argument("--resample", type=int, default=10,
                        help="fresh noise draws the snr-0 checkpoint is evaluated on (0: none; ~12 s each)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared, busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        rows.append(seed_row(args, seed))
        print(format_table(rows[-1:], args.draws, args.resample), "\n", flush=True)
    print("average mAP (%) over tIoU 0.3:0.7 on the test split; (n) draws, shown as mean / max")
    print(format_table(rows, args.draws, args.resample))
    seconds = [float(r["seconds"]) for r in rows]  # type: ignore[arg-type]
    if max(seconds) > RUN_EXISTED_SEC:
        print(f"median training + evaluation time: {np.median(seconds):.0f} s")
    else:
        print(f"the runs already existed under {args.root / 'runs'} (resumed as finished, not timed)")


if __name__ == "__main__":
    main()
