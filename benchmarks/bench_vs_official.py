"""Benchmark: tal_lab against the official ActionFormer and TriDet code, side by side, in one run.

What is measured, per configuration and implementation, at THUMOS14 shapes (the repositories'
own ``configs/thumos_i3d.yaml``: batch 2, max_seq_len 2304, 2048-d I3D input, 20 classes):

* ``original``: ActionFormer, convTransformer backbone + identity neck (ActionFormer's YAML);
* ``C``: ActionFormer, conv backbone + fpn neck (same YAML, ``model.backbone_type=conv``,
  ``model.fpn_type=fpn`` in both implementations);
* ``tridet``: TriDet's model (SGP backbone + Trident head, TriDet's YAML).

The official code is loaded with the official loader (``libs.core.load_config``) and built with
``libs.modeling.make_meta_arch``; tal_lab reads the same YAML file with
:func:`tal_lab.config.load_config` (official dialects) and builds :func:`tal_lab.models.build_detector`.
The parameter counts of the two must be equal (checked; the run stops otherwise).

1. **Training step** (seconds): zero_grad, forward with losses, backward, gradient clipping to
   ``train_cfg.clip_grad_l2norm``, optimiser step, schedule step, EMA update. Official: the body of
   its ``train_one_epoch`` with its ``make_optimizer`` / ``make_scheduler`` / ``ModelEma``;
   tal_lab: :func:`tal_lab.engine.trainer.training_step` with its own optimiser, schedule and EMA
   (as ``benchmarks/bench_train.py``). One untimed warm-up step, then the median of ``--steps``.
   Two batch sources, the same random features for both implementations (NumPy, fixed seeds):

   * ``full``: both videos 2304 steps long (every batch as the reference pads it);
   * ``thumos-lengths``: valid lengths from the THUMOS14 training split ('Validation' in
     ``--annotations``). A video's length in feature steps is the number of I3D windows that fit,
     ``(round(duration * fps) - num_frames) // feat_stride + 1`` (num_frames 16, feat_stride 4;
     ActionFormer reads the length from the feature file, which this formula approximates), and
     each is cropped as ActionFormer's training crops it (``truncate_feats``: longer than 2304 ->
     2304; otherwise a random length in [round(0.9 L), L], ``crop_ratio`` [0.9, 1.0]). One
     simulated epoch crops each of the 200 videos once; ``thumos-lengths`` pairs them at random
     (a shuffled loader, batch 2) and the tal_lab mode ``minimal+bucketed`` draws them with
     tal_lab's own length-bucketing sampler (``loader.length_buckets`` 8:
     :class:`tal_lab.data.bucketing.LengthBucketBatchSampler`, which sorts by the uncropped
     length within pools of 8 batches, as the training loader does). The timed
     batches are ``--steps`` pairs at evenly spaced quantiles of the epoch's padded lengths,
     after one random warm-up pair (``draw_batches``): their median is the epoch's median step,
     not a random draw's (an earlier version drew the pairs at random, and 3 steps could land
     on short or long pairs: 0.42x and 0.80x for the same mode).
     The official code pads every batch to 2304 itself; tal_lab pads per ``model.train_padding``.
     The mean padded length is reported over the timed batches and over the whole epoch.

2. **Inference per video** (seconds): ``model.eval()``, ``torch.no_grad()``, one video at a time
   as the official evaluation does, post-processing included (official: its forward, which
   decodes and runs its C++ soft-NMS extension; tal_lab: the detector's eval forward, decoding
   and its NMS). Videos: ``--infer-videos`` test videos ('Test', length <= 2304, fixed seed) plus
   one untimed warm-up video; the mean per video is reported. The two models have different
   random weights (separate processes); both start from the same prior-probability bias, so
   the NMS sees a similar load (the mean number of detections per video is shown).

3. **Peak memory**: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the worker process, which
   runs one measurement of one implementation (imports and model included).

tal_lab modes (config overrides, :func:`tal_lab.config.apply_overrides`): ``reference``
(``model.train_padding=reference``, ``model.eval_padding=reference``), ``minimal`` (both
``minimal``; refused for SGP: 'n/a' for tridet), ``minimal+bucketed`` (``minimal`` with the
bucketed pairs; training on THUMOS lengths only). More modes: ``--mode-overrides NAME=KEY=VALUE[,KEY=VALUE...]``
(repeatable), e.g. ``--mode-overrides bf16=engine.amp=bf16`` or
``--mode-overrides "auto=model.train_padding=auto,model.eval_padding=auto"``; such a mode runs
every measurement, except that a NAME ending in ``+bucketed`` runs the bucketed training only.
An override tal_lab rejects is printed in the table cell, and the run goes on.

How it runs: both official repositories have a top-level package ``libs``, so each
(implementation, configuration, mode, measurement) runs in its own process: this script
re-invokes itself with ``--worker SPEC`` and reads a JSON result from the last line of the
worker's stdout. Rounds are interleaved: for each round, for each configuration, for each
measurement, the official worker and then each tal_lab mode's worker. A cell shows the median
over rounds of the per-round medians, followed by each round's value, then the ratio
tal_lab / official measured in this run, with a check against the issue's targets (training
step <= 0.5x, inference <= 0.4x, peak RSS <= 1.0x).

The official workers build ``nms_1d_cpu`` (``libs/utils/csrc/nms_cpu.cpp``) with
``torch.utils.cpp_extension.load`` (``-O3 -fopenmp``: the official setup.py's ``-fopenmp`` and
setuptools' ``-O3``) into ``~/.cache/tal_lab_bench/<clone>`` and register it as
``sys.modules['nms_1d_cpu']`` before importing ``libs``. ``libs.utils`` imports the official
evaluator, which needs ``joblib``; when it is not installed, a stub module stands in for it
(the evaluator is never called: no mAP here).

Usage::

    python benchmarks/bench_vs_official.py --actionformer /work/official/actionformer_release \\
        --tridet /work/official/TriDet [--rounds 2] [--steps 3] [--configs original C tridet] \\
        [--modes reference minimal minimal+bucketed] [--mode-overrides NAME=KEY=VALUE,...] \\
        [--threads 2] [--infer-videos 4] [--annotations PATH] [--json PATH] [--quick] [--tiny]

``--actionformer`` / ``--tridet`` default to $TAL_LAB_ACTIONFORMER / $TAL_LAB_TRIDET; only the
clones the chosen configurations need are required. ``--quick`` is a smoke test (1 round,
1 step, 2 inference videos); ``--tiny`` checks the plumbing at small shapes (T 576, the
smallest multiple of ActionFormer's divisor 576 for window 19 and 6 levels; 256-d input;
lengths scaled by 576 / 2304): its figures say nothing about THUMOS14.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ANNOTATIONS = "/work/shared/data/thumos14/thumos14.json"
ITERS_PER_EPOCH = 100  # THUMOS14: 200 training videos, batch 2 (the schedule's length)
BATCH = 2
SEGMENTS_PER_VIDEO = 15
FEAT_STRIDE, NUM_FRAMES = 4, 16  # THUMOS14 I3D features (configs/thumos_i3d.yaml)
FULL_T, FULL_DIM = 2304, 2048
TINY_T, TINY_DIM = 576, 256
SEED = 0
LENGTH_BUCKETS = 8  # loader.length_buckets of the minimal+bucketed mode

# configuration -> (official repository, config overrides applied in both implementations)
CONFIGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "original": ("actionformer", ()),
    "C": ("actionformer", ("model.backbone_type=conv", "model.fpn_type=fpn")),
    "tridet": ("tridet", ()),
}
SGP_CONFIGS = {"tridet"}  # tal_lab refuses minimal padding for the SGP backbone
REPO_FLAGS = {"actionformer": ("--actionformer", "TAL_LAB_ACTIONFORMER", "happyharrycn/actionformer_release"),
              "tridet": ("--tridet", "TAL_LAB_TRIDET", "dingfengshi/TriDet")}

MEASUREMENTS = ("train-full", "train-lengths", "infer")
TARGETS = {"train": 0.5, "infer": 0.4, "rss": 1.0}  # tal_lab / official at most (the issue's)
OFFICIAL = "official"


@dataclass(frozen=True)
class Mode:
    """A tal_lab mode: config overrides, and whether it trains on the bucketed pairs only."""

    name: str
    overrides: tuple[str, ...]
    bucketed: bool = False
    builtin: bool = True

    @property
    def measurements(self) -> tuple[str, ...]:
        return ("train-lengths",) if self.bucketed else MEASUREMENTS

    @property
    def minimal(self) -> bool:
        return any(o.endswith("=minimal") for o in self.overrides)


REFERENCE_PADDING = ("model.train_padding=reference", "model.eval_padding=reference")
MINIMAL_PADDING = ("model.train_padding=minimal", "model.eval_padding=minimal")
BUILTIN_MODES = {"reference": Mode("reference", REFERENCE_PADDING),
                 "minimal": Mode("minimal", MINIMAL_PADDING),
                 "minimal+bucketed": Mode("minimal+bucketed", (*MINIMAL_PADDING, f"loader.length_buckets={LENGTH_BUCKETS}"),
                                          bucketed=True)}


# ------------------------------------------------------------------ inputs (both implementations)
def video_steps(duration: float, fps: float) -> int:
    """Feature steps of a THUMOS14 video: the I3D windows (16 frames, stride 4) that fit."""
    return max(1, (int(round(duration * fps)) - NUM_FRAMES) // FEAT_STRIDE + 1)


def read_lengths(annotations: Path, subset: str) -> list[tuple[str, int, float, float]]:
    """(video id, steps, fps, duration) of every video of a subset, in the file's order."""
    database = json.loads(annotations.read_text())["database"]
    return [(vid, video_steps(v["duration"], v["fps"]), float(v["fps"]), float(v["duration"]))
            for vid, v in database.items() if v["subset"] == subset]


def train_crop(length: int, max_seq_len: int, crop_ratio: tuple[float, float], rng: np.random.RandomState) -> int:
    """ActionFormer's training crop of a video's length (``truncate_feats``)."""
    if length > max_seq_len:
        return max_seq_len
    low, high = max(round(crop_ratio[0] * length), 1), min(round(crop_ratio[1] * length), length)
    return int(rng.randint(low, high + 1))


def epoch_pairs(lengths: list[int], max_seq_len: int, crop_ratio: tuple[float, float], length_buckets: int,
                seed: int) -> list[list[int]]:
    """One simulated epoch of batch-2 length pairs: shuffled (``length_buckets`` 0), or drawn by
    tal_lab's training sampler with ``loader.length_buckets`` pools, which sorts by the
    uncropped length (capped at max_seq_len) as ``item_lengths`` gives it."""
    from tal_lab.data.bucketing import LengthBucketBatchSampler
    import torch

    rng = np.random.RandomState(seed)
    cropped = [train_crop(n, max_seq_len, crop_ratio, rng) for n in lengths]
    if length_buckets:
        sampler = LengthBucketBatchSampler([min(n, max_seq_len) for n in lengths], BATCH, length_buckets,
                                           torch.Generator().manual_seed(seed))
        return [[cropped[i] for i in batch] for batch in sampler]
    order = list(rng.permutation(len(cropped)))
    return [[cropped[i] for i in order[k:k + BATCH]] for k in range(0, len(order) - BATCH + 1, BATCH)]


def draw_batches(pairs: list[list[int]], count: int, seed: int) -> list[list[int]]:
    """A warm-up pair, then ``count - 1`` pairs at evenly spaced quantiles of the epoch's padded
    length (a pair's longer video): the timed steps span the epoch's cost, so their median is
    the median step of the epoch rather than of a lucky or unlucky random draw. The warm-up is
    a random pair (fixed seed)."""
    by_cost = sorted(pairs, key=max)
    timed = [by_cost[min(len(by_cost) - 1, int((k + 0.5) * len(by_cost) / (count - 1)))] for k in range(count - 1)]
    return [pairs[int(np.random.RandomState(seed).randint(len(pairs)))], *timed]


def make_video(index: int, length: int, input_dim: int, num_classes: int, fps: float = 30.0,
               duration: float | None = None) -> dict[str, Any]:
    """An ActionFormer video dict of random features with ~15 actions inside its valid length."""
    import torch

    rng = np.random.RandomState(10_000 + index)
    feats = torch.from_numpy(rng.standard_normal((input_dim, length)).astype(np.float32))
    starts = rng.uniform(0, max(length - 8, 1), SEGMENTS_PER_VIDEO)
    ends = np.minimum(starts + 8 + rng.uniform(0, 1, SEGMENTS_PER_VIDEO) * min(150.0, length / 2), length)
    segments = torch.from_numpy(np.stack([starts, ends], axis=1).astype(np.float32))
    labels = torch.from_numpy(rng.randint(0, num_classes, SEGMENTS_PER_VIDEO).astype(np.int64))
    if duration is None:
        duration = ((length - 1) * FEAT_STRIDE + NUM_FRAMES) / fps
    return {"video_id": f"bench_{index}", "feats": feats, "segments": segments, "labels": labels, "fps": fps,
            "duration": duration, "feat_stride": float(FEAT_STRIDE), "feat_num_frames": float(NUM_FRAMES)}


# ------------------------------------------------------------------ the two implementations (worker side)
@dataclass
class Bench:
    """What a worker measures: one built model, its training step and its inference."""

    num_params: int
    train_step: Callable[[list[dict[str, Any]]], float]
    infer: Callable[[dict[str, Any]], int]
    train_length: Callable[[list[int]], int | None]
    eval_length: Callable[[int], int | None]
    set_train: Callable[[bool], None]
    notes: list[str]


def set_dotted(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value


def load_nms_extension(clone: Path) -> None:
    """Build (once, cached) and register the official C++ NMS as ``nms_1d_cpu``."""
    from torch.utils.cpp_extension import load

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tal_lab_bench" / clone.name
    cache.mkdir(parents=True, exist_ok=True)
    module = load(name="nms_1d_cpu", sources=[str(clone / "libs" / "utils" / "csrc" / "nms_cpu.cpp")],
                  build_directory=str(cache), extra_cflags=["-O3", "-fopenmp"], verbose=False)
    sys.modules["nms_1d_cpu"] = module


def stub_joblib(notes: list[str]) -> None:
    """The official evaluator imports joblib; stand in for it when it is not installed."""
    try:
        import joblib  # noqa: F401
    except ImportError:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("joblib is stubbed by bench_vs_official.py (no mAP evaluation here)")

        stub = types.ModuleType("joblib")
        stub.Parallel = stub.delayed = unavailable  # type: ignore[attr-defined]
        sys.modules["joblib"] = stub
        notes.append("joblib stubbed (official evaluator not used)")


def official_bench(spec: dict[str, Any]) -> Bench:
    import torch
    import yaml

    clone, notes = Path(spec["clone"]), []
    load_nms_extension(clone)
    stub_joblib(notes)
    sys.path.insert(0, str(clone))
    from libs.core.config import _update_config, load_config
    from libs.modeling import make_meta_arch
    from libs.utils import ModelEma, make_optimizer, make_scheduler

    cfg = load_config(str(clone / "configs" / "thumos_i3d.yaml"))
    for item in spec["config_overrides"]:
        key, value = item.split("=", 1)
        set_dotted(cfg, key, yaml.safe_load(value))
    cfg = _update_config(cfg)  # dataset -> model fields, as the loader fills them
    torch.manual_seed(SEED)
    model = make_meta_arch(cfg["model_name"], **cfg["model"])
    optimizer = make_optimizer(model, cfg["opt"])
    scheduler = make_scheduler(optimizer, cfg["opt"], ITERS_PER_EPOCH)
    model_ema = ModelEma(model)
    clip = float(cfg["train_cfg"]["clip_grad_l2norm"])

    def train_step(videos: list[dict[str, Any]]) -> float:  # official train_one_epoch, one iteration
        optimizer.zero_grad(set_to_none=True)
        losses = model(videos)
        losses["final_loss"].backward()
        if clip > 0.0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        model_ema.update(model)
        return float(losses["final_loss"])

    def infer(video: dict[str, Any]) -> int:  # official valid_one_epoch, one video
        with torch.no_grad():
            output = model([video])
        return int(output[0]["segments"].shape[0])

    def eval_length(n: int) -> int:
        div = model.max_div_factor
        return model.max_seq_len if n <= model.max_seq_len else (n + div - 1) // div * div

    notes.append("model not wrapped in nn.DataParallel (a pass-through on a CPU-only machine)")
    return Bench(sum(p.numel() for p in model.parameters()), train_step, infer,
                 lambda lengths: int(model.max_seq_len), eval_length, model.train, notes)


def tal_lab_bench(spec: dict[str, Any]) -> Bench:
    import torch

    from tal_lab.config import apply_overrides, load_config
    from tal_lab.core.autocast import autocast
    from tal_lab.engine.ema import ModelEMA
    from tal_lab.engine.optim import build_optimizer, build_scheduler
    from tal_lab.engine.trainer import training_step
    from tal_lab.models import build_detector

    cfg = load_config(str(Path(spec["clone"]) / "configs" / "thumos_i3d.yaml"))
    if spec["config_overrides"]:
        cfg = apply_overrides(cfg, list(spec["config_overrides"]))
    if spec["mode_overrides"]:
        cfg = apply_overrides(cfg, list(spec["mode_overrides"]))
    torch.manual_seed(SEED)
    model = build_detector(cfg)
    device, amp = torch.device("cpu"), cfg["engine"]["amp"]
    optimizer = build_optimizer(model, cfg["opt"])
    scheduler = build_scheduler(optimizer, cfg["opt"], ITERS_PER_EPOCH)
    ema = ModelEMA(model, float(cfg["engine"]["ema_decay"])) if cfg["engine"]["ema"] else None
    clip = cfg["train_cfg"]["clip_grad_l2norm"]

    def train_step(videos: list[dict[str, Any]]) -> float:
        losses = training_step(model, videos, optimizer, scheduler, device, ema=ema,
                               clip_norm=None if clip is None else float(clip), amp=amp)
        return float(losses["final_loss"])

    def infer(video: dict[str, Any]) -> int:
        with torch.no_grad(), autocast(device, amp):
            output = model([video])
        return int(output[0]["segments"].shape[0])

    def train_length(lengths: list[int]) -> int | None:
        try:
            return int(model.padding.train_length(lengths))
        except (AttributeError, TypeError, ValueError):
            return None

    def eval_length(n: int) -> int | None:
        try:
            return int(model.padding.eval_groups([n])[0][0])
        except (AttributeError, TypeError, ValueError, IndexError):
            return None

    notes = [f"train_padding={cfg['model']['train_padding']}, eval_padding={cfg['model']['eval_padding']}, "
             f"amp={amp}"]
    return Bench(sum(p.numel() for p in model.parameters()), train_step, infer, train_length, eval_length,
                 model.train, notes)


def measure_training(bench: Bench, spec: dict[str, Any]) -> dict[str, Any]:
    """One untimed warm-up step, then one timed step per remaining batch (features made untimed)."""
    bench.set_train(True)
    seconds, cpu_seconds, losses = [], [], []
    for index, lengths in enumerate(spec["batches"]):
        videos = [make_video(BATCH * index + k, n, spec["input_dim"], spec["num_classes"])
                  for k, n in enumerate(lengths)]
        start, cpu_start = time.perf_counter(), time.process_time()
        losses.append(bench.train_step(videos))
        if index > 0:
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
    padded = [bench.train_length(lengths) for lengths in spec["batches"][1:]]
    epoch = [bench.train_length(lengths) for lengths in spec["epoch_pairs"]]
    return {"value": statistics.median(seconds), "seconds": seconds, "cpu_seconds": cpu_seconds, "losses": losses,
            "batch_lengths": spec["batches"][1:], "padded_lengths": padded,
            "mean_padded": _mean_or_none(padded), "epoch_mean_padded": _mean_or_none(epoch)}


def measure_inference(bench: Bench, spec: dict[str, Any]) -> dict[str, Any]:
    """One untimed warm-up video, then each video alone; the mean seconds per video."""
    bench.set_train(False)
    seconds, cpu_seconds, detections = [], [], []
    for index, (length, fps, duration) in enumerate(spec["videos"]):
        video = make_video(50_000 + index, length, spec["input_dim"], spec["num_classes"], fps, duration)
        start, cpu_start = time.perf_counter(), time.process_time()
        found = bench.infer(video)
        if index > 0:
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
            detections.append(found)
    lengths = [v[0] for v in spec["videos"][1:]]
    return {"value": statistics.mean(seconds), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "video_lengths": lengths, "padded_lengths": [bench.eval_length(n) for n in lengths],
            "detections": detections, "mean_detections": statistics.mean(detections)}


def _mean_or_none(values: list[int | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(statistics.mean(values))


def worker_main(spec: dict[str, Any]) -> int:
    """Run one measurement; print its JSON result as the last stdout line."""
    import torch

    torch.set_num_threads(int(spec["threads"]))
    result: dict[str, Any] = {"impl": spec["impl"], "config": spec["config"], "mode": spec["mode"],
                              "measurement": spec["measurement"], "threads": torch.get_num_threads()}
    phase = "build"
    if spec["measurement"] == "prepare":  # build the official NMS extension before anything is timed
        load_nms_extension(Path(spec["clone"]))
        print("\n" + json.dumps(result), flush=True)
        return 0
    try:
        bench = official_bench(spec) if spec["impl"] == OFFICIAL else tal_lab_bench(spec)
        result.update(num_params=bench.num_params, notes=bench.notes)
        phase = "measure"
        measure = measure_inference if spec["measurement"] == "infer" else measure_training
        result.update(measure(bench, spec))
        status = 0
    except Exception as error:  # reported in the table cell; the run goes on
        result.update(error=f"{type(error).__name__}: {error}".strip(), phase=phase)
        status = 1
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    sys.stdout.flush()
    print("\n" + json.dumps(result), flush=True)
    return status


# ------------------------------------------------------------------ orchestration (parent side)
def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one worker process; its JSON result, or an error dict."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=PROJECT_ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["no output"]
        return {"error": f"worker exited {proc.returncode}: {tail[0]}", "stderr_tail": proc.stderr[-4000:]}


@dataclass
class Plan:
    """Everything the workers are given, decided once in the parent."""

    configs: list[str]
    modes: list[Mode]
    clones: dict[str, Path]
    rounds: int
    steps: int
    threads: int
    infer_videos: int
    tiny: bool
    timeout: float
    train_pairs: list[list[int]]  # one epoch, random pairs
    bucketed_pairs: list[list[int]]  # one epoch from tal_lab's length-bucketing sampler
    test_videos: list[list[float]]  # (steps, fps, duration), first = warm-up

    @property
    def max_seq_len(self) -> int:
        return TINY_T if self.tiny else FULL_T

    @property
    def input_dim(self) -> int:
        return TINY_DIM if self.tiny else FULL_DIM

    def config_overrides(self, config: str) -> list[str]:
        tiny = [f"dataset.input_dim={TINY_DIM}", f"dataset.max_seq_len={TINY_T}"] if self.tiny else []
        return list(CONFIGS[config][1]) + tiny

    def spec(self, impl: str, config: str, mode: Mode | None, measurement: str, num_classes: int) -> dict[str, Any]:
        spec = {"impl": impl, "config": config, "mode": mode.name if mode else OFFICIAL, "measurement": measurement,
                "clone": str(self.clones[CONFIGS[config][0]]), "config_overrides": self.config_overrides(config),
                "mode_overrides": list(mode.overrides) if mode else [], "threads": self.threads,
                "input_dim": self.input_dim, "num_classes": num_classes}
        if measurement == "train-full":
            spec["batches"] = [[self.max_seq_len] * BATCH] * (self.steps + 1)
            spec["epoch_pairs"] = [[self.max_seq_len] * BATCH]
        elif measurement == "train-lengths":
            pairs = self.bucketed_pairs if mode is not None and mode.bucketed else self.train_pairs
            spec["batches"], spec["epoch_pairs"] = draw_batches(pairs, self.steps + 1, SEED + 1), pairs
        else:
            spec["videos"] = self.test_videos
        return spec


def scaled(length: int, tiny: bool) -> int:
    return max(8, round(length * TINY_T / FULL_T)) if tiny else length


def make_plan(args: argparse.Namespace, clones: dict[str, Path], modes: list[Mode]) -> Plan:
    crop_ratio = official_crop_ratio(next(iter(clones.values())))
    max_seq_len = TINY_T if args.tiny else FULL_T
    train = [scaled(n, args.tiny) for _, n, _, _ in read_lengths(args.annotations, "Validation")]
    test = [(scaled(n, args.tiny), fps, dur) for _, n, fps, dur in read_lengths(args.annotations, "Test")]
    short = [v for v in test if v[0] <= max_seq_len]
    picks = np.random.RandomState(SEED + 2).choice(len(short), size=args.infer_videos + 1, replace=False)
    return Plan(configs=args.configs, modes=modes, clones=clones, rounds=args.rounds, steps=args.steps,
                threads=args.threads, infer_videos=args.infer_videos, tiny=args.tiny, timeout=args.worker_timeout,
                train_pairs=epoch_pairs(train, max_seq_len, crop_ratio, 0, SEED),
                bucketed_pairs=epoch_pairs(train, max_seq_len, crop_ratio, LENGTH_BUCKETS, SEED),
                test_videos=[list(short[i]) for i in picks])


def official_crop_ratio(clone: Path) -> tuple[float, float]:
    """dataset.crop_ratio of the official THUMOS14 config (ActionFormer's and TriDet's: [0.9, 1.0])."""
    import yaml

    cfg = yaml.safe_load((clone / "configs" / "thumos_i3d.yaml").read_text())
    low, high = cfg["dataset"]["crop_ratio"]
    return float(low), float(high)


def num_classes_of(clone: Path) -> int:
    import yaml

    return int(yaml.safe_load((clone / "configs" / "thumos_i3d.yaml").read_text())["dataset"]["num_classes"])


def not_applicable(config: str, mode: Mode) -> bool:
    return config in SGP_CONFIGS and mode.builtin and mode.minimal


def prepare_extensions(plan: Plan) -> None:
    """Build each clone's nms_1d_cpu once (cached) before the first timed worker."""
    for repo, clone in plan.clones.items():
        spec = {"impl": OFFICIAL, "config": repo, "mode": OFFICIAL, "measurement": "prepare", "clone": str(clone),
                "threads": plan.threads}
        result = run_worker(spec, plan.timeout)
        if "error" in result:
            raise SystemExit(f"building nms_1d_cpu of {clone} failed: {result['error']}\n"
                             f"{result.get('stderr_tail', '')}")


def run_all(plan: Plan) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Every worker, interleaved per round; results[(config, column, measurement)] = one per round."""
    prepare_extensions(plan)
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for round_index in range(plan.rounds):
        for config in plan.configs:
            classes = num_classes_of(plan.clones[CONFIGS[config][0]])
            for measurement in MEASUREMENTS:
                jobs: list[tuple[str, Mode | None]] = [(OFFICIAL, None)]
                jobs += [("tal_lab", m) for m in plan.modes
                         if measurement in m.measurements and not not_applicable(config, m)]
                for impl, mode in jobs:
                    spec = plan.spec(impl, config, mode, measurement, classes)
                    start = time.perf_counter()
                    result = run_worker(spec, plan.timeout)
                    result["wall_seconds"] = time.perf_counter() - start
                    column = mode.name if mode else OFFICIAL
                    results.setdefault((config, column, measurement), []).append(result)
                    log_progress(round_index, plan.rounds, config, column, measurement, result)
                    check_params(results, config)
    return results


def log_progress(round_index: int, rounds: int, config: str, column: str, measurement: str,
                 result: dict[str, Any]) -> None:
    value = "error: " + result["error"] if "error" in result else f"{result['value']:.3f} s"
    rss = f", peak RSS {result['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in result else ""
    print(f"[round {round_index + 1}/{rounds}] {config:>8} {column:>18} {measurement:>13}: {value}{rss} "
          f"({result['wall_seconds']:.0f} s wall)", file=sys.stderr, flush=True)


def check_params(results: dict[tuple[str, str, str], list[dict[str, Any]]], config: str) -> None:
    """Stop the run when tal_lab's model (a built-in mode) has another parameter count than the official."""
    counts = {column: r["num_params"] for (c, column, _), rs in results.items() if c == config
              for r in rs if "num_params" in r}
    official = counts.get(OFFICIAL)
    for column, count in counts.items():
        if official is not None and column in BUILTIN_MODES and count != official:
            raise SystemExit(f"config {config}: tal_lab ({column}) has {count:,} parameters, the official code "
                             f"{official:,}: not the same model")


# ------------------------------------------------------------------ report
def fmt_seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def summary(rounds: list[dict[str, Any]], key: str) -> tuple[float | None, list[float]]:
    values = [r[key] for r in rounds if r.get(key) is not None and "error" not in r]
    return (statistics.median(values) if values else None), values


class Footnotes:
    """Errors shown once below the table; cells refer to them by number."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, error: str) -> str:
        text = error.splitlines()[0][:300].replace("|", "/") if error else "error"
        if text not in self.texts:
            self.texts.append(text)
        return f"error [{self.texts.index(text) + 1}]"

    def render(self) -> str:
        return "\n".join(f"[{i}] {text}" for i, text in enumerate(self.texts, 1))


def cell(results: dict, config: str, column: str, measurement: str, key: str, fmt: Callable[[float], str],
         target: str | None, notes: Footnotes) -> str:
    """median (round / round) [ratio x check] for one table cell."""
    rounds = results.get((config, column, measurement))
    if not rounds:
        return "—"
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        return notes.ref(errors[0])
    value, per_round = summary(rounds, key)
    if value is None:
        return "—"
    text = f"{fmt(value)} ({' / '.join(fmt(v) for v in per_round)})"
    if target and column != OFFICIAL:
        official, _ = summary(results.get((config, OFFICIAL, measurement), []), key)
        if official:
            ratio = value / official
            text += f" **{ratio:.2f}x** {'✓' if ratio <= TARGETS[target] else '✗'}"
    return text


def padded_cell(results: dict, config: str, column: str, measurement: str) -> str:
    """Mean padded length of the timed inputs (the same in every round), and of the epoch for training."""
    rounds = results.get((config, column, measurement))
    if not rounds or any("error" in r for r in rounds):
        return "—"
    if measurement == "infer":
        lengths = rounds[0].get("padded_lengths") or [None]
        return "—" if None in lengths else f"{statistics.mean(lengths):.0f}"
    timed, epoch = rounds[0].get("mean_padded"), rounds[0].get("epoch_mean_padded")
    return "—" if timed is None else f"{timed:.0f} (epoch {epoch:.0f})"


def params_cell(results: dict, config: str, column: str) -> str:
    counts = {r["num_params"] for (c, col, _), rs in results.items() if c == config and col == column
              for r in rs if "num_params" in r}
    return ", ".join(f"{n:,}" for n in sorted(counts)) or "—"


ROWS: list[tuple[str, str, str, Callable[[float], str], str | None]] = [
    ("train step (s), full T", "train-full", "value", fmt_seconds, "train"),
    ("train step (s), thumos-lengths", "train-lengths", "value", fmt_seconds, "train"),
    ("inference per video (s)", "infer", "value", fmt_seconds, "infer"),
    ("detections per video", "infer", "mean_detections", lambda v: f"{v:.0f}", None),
    ("peak RSS (MiB), train full T", "train-full", "peak_rss_mib", lambda v: f"{v:.0f}", "rss"),
    ("peak RSS (MiB), train thumos-lengths", "train-lengths", "peak_rss_mib", lambda v: f"{v:.0f}", "rss"),
    ("peak RSS (MiB), inference", "infer", "peak_rss_mib", lambda v: f"{v:.0f}", "rss"),
]


def results_table(results: dict, plan: Plan) -> str:
    columns, notes = [OFFICIAL] + [m.name for m in plan.modes], Footnotes()
    lines = ["| config | measurement | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for config in plan.configs:
        rows = [("params", lambda col: params_cell(results, config, col))]
        rows += [(label, lambda col, m=m, k=k, f=f, t=t: cell(results, config, col, m, k, f, t, notes))
                 for label, m, k, f, t in ROWS[:2]]
        rows += [("mean padded length, thumos-lengths",
                  lambda col: padded_cell(results, config, col, "train-lengths"))]
        rows += [(label, lambda col, m=m, k=k, f=f, t=t: cell(results, config, col, m, k, f, t, notes))
                 for label, m, k, f, t in ROWS[2:3]]
        rows += [("mean padded length, inference", lambda col: padded_cell(results, config, col, "infer"))]
        rows += [(label, lambda col, m=m, k=k, f=f, t=t: cell(results, config, col, m, k, f, t, notes))
                 for label, m, k, f, t in ROWS[3:]]
        for label, render in rows:
            cells = []
            for column in columns:
                mode = next((m for m in plan.modes if m.name == column), None)
                cells.append("n/a (SGP refuses minimal)" if mode and not_applicable(config, mode) else render(column))
            lines.append(f"| {config} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\n" + notes.render() if notes.texts else "")


def cpu_info() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
    return {"model": fields.get("model name") or platform.processor() or platform.machine(),
            "logical_cpus": os.cpu_count(), "flags": {f: f in flags for f in wanted}}


def git_state(path: Path, under: str) -> str:
    """Commit of a clone, and whether ``under`` has uncommitted changes (read-only git calls)."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", "--no-optional-locks", "-C", str(path), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", under)
    return f"{path.name} @ {commit}" + (f" (uncommitted changes in {under}/)" if dirty else "")


def machine_info(plan: Plan) -> dict[str, Any]:
    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = "unknown"
    return {"cpu": cpu_info(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_cpu_capability": capability, "threads": plan.threads,
            "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_start": os.getloadavg(),
            "official_commits": {name: git_state(path, "libs") for name, path in plan.clones.items()},
            "tal_lab_commit": git_state(PROJECT_ROOT, "tal_lab")}


def header(info: dict[str, Any], plan: Plan, elapsed: float) -> str:
    cpu = info["cpu"]
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in cpu["flags"].items())
    commits = "; ".join(info["official_commits"].values())
    shape = f"TINY (T {TINY_T}, {TINY_DIM}-d)" if plan.tiny else f"THUMOS14 (T {FULL_T}, {FULL_DIM}-d)"
    modes = "; ".join(f"{m.name}: {', '.join(m.overrides) or '(config defaults)'}"
                      + (" [bucketed pairs, training only]" if m.bucketed else "") for m in plan.modes)
    return "\n".join([
        f"# tal_lab vs official code, {shape}, batch {BATCH}",
        "",
        f"- machine: {cpu['model']} ({cpu['logical_cpus']} logical CPUs); {flags}; "
        f"torch CPU capability {info['torch_cpu_capability']}",
        f"- torch {info['torch']}, Python {info['python']}, threads per worker: {info['threads']}; "
        f"date {info['date_utc']}; load average at start {info['load_average_start'][0]:.2f}, "
        f"at end {info['load_average_end'][0]:.2f}; run took {elapsed / 60:.1f} min",
        f"- official: {commits}",
        f"- tal_lab: {info['tal_lab_commit']}",
        f"- tal_lab modes: {modes}",
        f"- {plan.rounds} round(s); training: 1 warm-up + {plan.steps} timed step(s), median; inference: 1 warm-up "
        f"+ {plan.infer_videos} THUMOS14 test videos (lengths {[int(v[0]) for v in plan.test_videos[1:]]}), mean",
        "- cell: median over rounds of the per-round figures (each round's figure in parentheses); **ratio** = "
        "tal_lab / official, both measured in this run; ✓/✗: training <= 0.5x, inference <= 0.4x, peak RSS <= 1.0x",
        "- mean padded length: over the timed batches (and over one simulated epoch); the official code pads "
        "every training batch to max_seq_len",
    ])


def report(results: dict, plan: Plan, info: dict[str, Any], elapsed: float) -> str:
    return header(info, plan, elapsed) + "\n\n" + results_table(results, plan) + "\n"


def save_json(path: Path, results: dict, plan: Plan, info: dict[str, Any], args: argparse.Namespace) -> None:
    payload = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "modes": [vars(m) | {"overrides": list(m.overrides)} for m in plan.modes],
               "train_batches": draw_batches(plan.train_pairs, plan.steps + 1, SEED + 1),
               "bucketed_batches": draw_batches(plan.bucketed_pairs, plan.steps + 1, SEED + 1),
               "test_videos": plan.test_videos,
               "results": [{"config": c, "column": col, "measurement": m, "rounds": rs}
                           for (c, col, m), rs in results.items()]}
    path.write_text(json.dumps(payload, indent=1, default=str))


# ------------------------------------------------------------------ command line
def parse_mode_overrides(items: list[str]) -> list[Mode]:
    """``NAME=KEY=VALUE[,KEY=VALUE...]``; a comma inside a value (a YAML list) stays in it."""
    modes = []
    for item in items:
        name, _, rest = item.partition("=")
        if not name or "=" not in rest:
            raise argparse.ArgumentTypeError(f"--mode-overrides {item!r}: expected NAME=KEY=VALUE[,KEY=VALUE...]")
        overrides: list[str] = []
        for piece in rest.split(","):
            if "=" in piece or not overrides:
                overrides.append(piece.strip())
            else:
                overrides[-1] += "," + piece
        modes.append(Mode(name, tuple(overrides), bucketed=name.endswith("+bucketed"), builtin=False))
    return modes


def choose_modes(parser: argparse.ArgumentParser, names: list[str], extra: list[Mode]) -> list[Mode]:
    custom = {m.name: m for m in extra}
    unknown = [n for n in names if n not in BUILTIN_MODES and n not in custom]
    if unknown:
        parser.error(f"--modes: unknown mode(s) {unknown}; built-in: {list(BUILTIN_MODES)}, or add one with "
                     "--mode-overrides NAME=KEY=VALUE")
    chosen = [custom.get(n) or BUILTIN_MODES[n] for n in names]
    return chosen + [m for m in extra if m.name not in names]


def clone_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Path]:
    """The official clones the chosen configurations need, checked."""
    clones = {}
    for repo in sorted({CONFIGS[c][0] for c in args.configs}):
        flag, env, github = REPO_FLAGS[repo]
        value = getattr(args, repo)
        if not value:
            parser.error(f"{flag} is required (or set ${env}): a clone of {github}")
        path = Path(value).expanduser().resolve()
        if not (path / "libs" / "modeling").is_dir():
            parser.error(f"{flag} {value}: no libs/modeling there; expected a clone of {github}")
        clones[repo] = path
    return clones


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actionformer", default=os.environ.get("TAL_LAB_ACTIONFORMER"),
                        help="clone of happyharrycn/actionformer_release (default $TAL_LAB_ACTIONFORMER)")
    parser.add_argument("--tridet", default=os.environ.get("TAL_LAB_TRIDET"),
                        help="clone of dingfengshi/TriDet (default $TAL_LAB_TRIDET)")
    parser.add_argument("--annotations", type=Path, default=Path(DEFAULT_ANNOTATIONS),
                        help="ActionFormer's thumos14.json (video lengths)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps after 1 warm-up (default 3)")
    parser.add_argument("--infer-videos", type=int, default=4, help="timed inference videos (default 4)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", default=list(BUILTIN_MODES),
                        help=f"tal_lab modes (built-in: {', '.join(BUILTIN_MODES)}; others from --mode-overrides)")
    parser.add_argument("--mode-overrides", action="append", default=[], metavar="NAME=KEY=VALUE[,KEY=VALUE]",
                        help="add a tal_lab mode made of config overrides, e.g. bf16=engine.amp=bf16 (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every worker (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also save every number here")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round, 1 step, 2 inference videos")
    parser.add_argument("--tiny", action="store_true", help=f"plumbing check at T {TINY_T}, {TINY_DIM}-d input")
    parser.add_argument("--worker-timeout", type=float, default=3600.0, help="seconds per worker (default 3600)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.worker is not None:
        raise SystemExit(worker_main(json.loads(args.worker)))
    if args.quick:
        args.rounds, args.steps, args.infer_videos = 1, 1, 2
    for flag in ("rounds", "steps", "infer_videos", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    try:
        extra = parse_mode_overrides(args.mode_overrides)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    modes = choose_modes(parser, args.modes, extra)
    clones = clone_paths(parser, args)
    if not args.annotations.is_file():
        parser.error(f"--annotations {args.annotations}: no such file (ActionFormer's thumos14.json)")
    plan = make_plan(args, clones, modes)
    info = machine_info(plan)
    start = time.perf_counter()
    results = run_all(plan)
    elapsed = time.perf_counter() - start
    info["load_average_end"] = os.getloadavg()
    print(report(results, plan, info, elapsed), flush=True)
    if args.json:
        save_json(args.json, results, plan, info, args)
        print(f"numbers saved to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
