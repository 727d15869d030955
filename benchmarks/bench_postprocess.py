"""Benchmark tal_lab's pure-PyTorch post-processing (medians over repeats).

Prints the median time of

* multi-class Gaussian soft-NMS on 2,000 candidates x 20 classes (the figure
  ../shared/reference/PERFORMANCE.md gives for the reference C++ extension: ~10 ms) and on
  11,440 candidates (the most THUMOS14 can produce: 2,000 per level on 5 levels + 72 x 20;
  reference ~66 ms);
* hard NMS and class-agnostic soft-NMS with voting on the same candidates;
* a whole ActionFormer-head decoding (``level_scores`` / ``level_segments``, then
  ``decode_video``: candidate selection + NMS + seconds) at THUMOS14 shapes: levels of
  2304, 1152, ..., 72 steps, 20 classes, thumos test_cfg.

Usage: ``python benchmarks/bench_postprocess.py [--repeats 15] [--device cpu|cuda]``. On CPU it
also prints the median process CPU time, which stays meaningful on a loaded shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from tal_lab.ops.decode import decode_video, level_scores, level_segments
from tal_lab.ops.nms import batched_nms

THUMOS_TEST_CFG = {
    "pre_nms_thresh": 0.001, "pre_nms_topk": 2000, "iou_threshold": 0.1, "min_score": 0.001,
    "max_seg_num": 200, "nms_method": "soft", "nms_sigma": 0.5, "duration_thresh": 0.05,
    "multiclass_nms": True, "voting_thresh": 0.7,
}
THUMOS_LEVEL_LENGTHS = [2304 // 2**level for level in range(6)]
NUM_CLASSES = 20
VIDEO = {"fps": 30.0, "duration": 180.0, "feat_stride": 4, "feat_num_frames": 16}


def _median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> str:
    """Median wall time and, on CPU, median process CPU time (the load-independent figure: the
    work runs on one thread, so on a shared machine CPU time is what it costs when idle)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    text = f"{statistics.median(wall) * 1e3:7.1f} ms"
    return text if device.type == "cuda" else f"{text} (CPU {statistics.median(cpu) * 1e3:.1f} ms)"


def make_candidates(num: int, num_classes: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Candidates shaped like a THUMOS14 video's: centres over 2304 grid steps, lengths 1-100."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(num, generator=gen) * 2304
    length = torch.exp(torch.rand(num, generator=gen) * 4.6)  # 1 .. 100 grid steps
    segments = torch.stack([centre - length / 2, centre + length / 2], 1)
    scores = torch.sigmoid(torch.randn(num, generator=gen) * 1.5 - 3.0)
    labels = torch.randint(0, num_classes, (num,), generator=gen)
    return segments.to(device), scores.to(device), labels.to(device)


def make_head_outputs(device: torch.device, seed: int = 0) -> tuple[list[torch.Tensor], ...]:
    """Per-level logits / offsets / points / masks of one THUMOS14-sized video (T = 2304)."""
    gen = torch.Generator().manual_seed(seed)
    logits, offsets, points, valid = [], [], [], []
    for level, steps in enumerate(THUMOS_LEVEL_LENGTHS):
        stride = 2**level
        logits.append(torch.randn(steps, NUM_CLASSES, generator=gen) * 1.5 - 4.6)
        offsets.append(torch.exp(torch.randn(steps, 2, generator=gen)))
        t = torch.arange(steps, dtype=torch.float32) * stride
        lo, hi = (0.0, 4.0) if level == 0 else (4.0 * 2 ** (level - 1), 4.0 * 2**level)
        points.append(torch.stack([t, torch.full_like(t, lo), torch.full_like(t, hi), torch.full_like(t, stride)], 1))
        valid.append(torch.arange(steps) < int(steps * 0.8))
    move = lambda xs: [x.to(device) for x in xs]  # noqa: E731
    return move(logits), move(offsets), move(points), move(valid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per figure (median reported)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, intra-op threads {torch.get_num_threads()} "
          "(post-processing itself runs on 1 CPU thread)")

    for num in (2000, 11440):
        segs, scores, labels = make_candidates(num, NUM_CLASSES, device)
        soft = _median_ms(lambda: batched_nms(segs, scores, labels, 0.1, 0.001, 200, sigma=0.5), args.repeats, device)
        hard = _median_ms(
            lambda: batched_nms(segs, scores, labels, 0.1, 0.001, 200, use_soft_nms=False), args.repeats, device
        )
        agnostic = _median_ms(
            lambda: batched_nms(segs, scores, labels, 0.1, 0.001, 200, multiclass=False, voting_thresh=0.7),
            args.repeats, device,
        )
        print(f"{num:>6} candidates x {NUM_CLASSES} classes: soft-NMS (multi-class, Gaussian) {soft} | "
              f"hard NMS {hard} | class-agnostic soft-NMS + voting {agnostic}")

    logits, offsets, points, valid = make_head_outputs(device)

    def decode() -> dict[str, torch.Tensor]:
        scores = [level_scores(x, m) for x, m in zip(logits, valid)]
        segments = [level_segments(x[:, None, :], p) for x, p in zip(offsets, points)]
        return decode_video(scores, segments, THUMOS_TEST_CFG, VIDEO)

    full = _median_ms(decode, args.repeats, device)
    out = decode()
    print(f"ActionFormer decoding at THUMOS14 shapes (levels {THUMOS_LEVEL_LENGTHS}, {NUM_CLASSES} classes): "
          f"{full} median, {len(out['scores'])} detections")


if __name__ == "__main__":
    main()
