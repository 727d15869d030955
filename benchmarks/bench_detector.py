"""Benchmark the detector at THUMOS14 shapes (medians over repeats).

For each backbone / neck pair (ActionFormer's THUMOS14 sizes: 2048-d I3D input, T = 2304,
batch 2, 512 channels, window 19, 20 classes) prints

* forward: a training-mode forward (losses included) without autograd;
* fwd+bwd: a training step without the optimiser (forward, losses, backward);
* infer/video: eval-mode inference of one 1,500-step video (forward + decoding + soft-NMS);
* peak memory: the child process's peak RSS on the CPU (each pair runs in a fresh process), or
  ``torch.cuda.max_memory_allocated`` on a GPU;

and the time of the multi-class Gaussian soft-NMS (:func:`tal_lab.ops.nms.batched_nms`) on
2,000 candidates over 20 classes. Reference figures (../shared/reference/PERFORMANCE.md, 2-core
CPU): train step 10.8 s for convTransformer + identity, 6.3 s with the SGP backbone; soft-NMS
(C++) 10 ms.

Usage::

    python benchmarks/bench_detector.py --device cpu --repeats 3
    python benchmarks/bench_detector.py --device cuda --repeats 10 --amp bf16
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
from typing import Any, Callable

import torch
from timing import median_seconds  # benchmarks/timing.py, beside this script

PAIRS = [("convTransformer", "identity"), ("convTransformer", "fpn"), ("conv", "identity"),
         ("conv", "fpn"), ("sgp", "identity"), ("sgp", "fpn")]
THUMOS = {
    "dataset_name": "thumos",
    "dataset": {"input_dim": 2048, "num_classes": 20, "max_seq_len": 2304, "feat_stride": 4, "num_frames": 16},
    "model": {"n_mha_win_size": 19, "fpn_type": "identity", "backbone_arch": [2, 2, 5]},
    "train_cfg": {"init_loss_norm": 100, "clip_grad_l2norm": 1.0},
    "test_cfg": {"pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001, "voting_thresh": 0.7},
}




def thumos_videos(batch: int, length: int, device: torch.device, seed: int = 0) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    videos = []
    for b in range(batch):
        starts = torch.rand(8, generator=gen) * (length - 200)
        segs = torch.stack([starts, starts + 10 + torch.rand(8, generator=gen) * 150], 1)
        videos.append({"video_id": f"v{b}", "feats": torch.randn(2048, length, generator=gen).to(device),
                       "segments": segs.to(device), "labels": torch.randint(0, 20, (8,), generator=gen).to(device),
                       "fps": 30.0, "duration": length * 4 / 30.0, "feat_stride": 4, "feat_num_frames": 16})
    return videos


def bench_pair(backbone: str, neck: str, device_name: str, repeats: int, amp: str, threads: int) -> dict[str, float]:
    """Time one backbone / neck pair (runs in a child process on the CPU)."""
    from tal_lab.config import load_config
    from tal_lab.models import build_detector

    if threads > 0:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    cfg = load_config(THUMOS, {"model": {"backbone_type": backbone, "fpn_type": neck}})
    model = build_detector(cfg).to(device)
    videos = thumos_videos(2, 2304, device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def forward() -> None:
        model.train()
        with torch.no_grad(), autocast():
            model(videos)

    def step() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        with autocast():
            losses = model(videos)
        losses["final_loss"].backward()

    def infer() -> None:
        model.eval()
        with torch.no_grad(), autocast():
            model([dict(videos[0], feats=videos[0]["feats"][:, :1500])])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out = {
        "forward_s": median_seconds(forward, repeats, device),
        "step_s": median_seconds(step, repeats, device),
        "infer_s": median_seconds(infer, repeats, device),
    }
    if device.type == "cuda":
        out["peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return out


def _child(args: tuple, queue: "mp.Queue[Any]") -> None:
    queue.put(bench_pair(*args))


def run_pair(args: tuple, isolate: bool) -> dict[str, float]:
    if not isolate:
        return bench_pair(*args)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_soft_nms(device: torch.device, repeats: int) -> float:
    from tal_lab.ops.nms import batched_nms

    gen = torch.Generator().manual_seed(0)
    centre = torch.rand(2000, generator=gen) * 2304
    length = torch.exp(torch.rand(2000, generator=gen) * 4.6)
    segments = torch.stack([centre - length / 2, centre + length / 2], 1).to(device)
    scores = torch.sigmoid(torch.randn(2000, generator=gen) * 1.5 - 3.0).to(device)
    labels = torch.randint(0, 20, (2000,), generator=gen).to(device)
    return median_seconds(lambda: batched_nms(segments, scores, labels, iou_threshold=0.1, min_score=0.001,
                                              max_seg_num=200, use_soft_nms=True, multiclass=True,
                                              sigma=0.5, voting_thresh=0.7), repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median reported)")
    parser.add_argument("--pairs", default="all", help="comma list like convTransformer/identity,sgp/fpn")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="autocast dtype")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: default)")
    args = parser.parse_args()
    pairs = PAIRS if args.pairs == "all" else [tuple(p.split("/")) for p in args.pairs.split(",")]
    device = torch.device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, amp {args.amp}, "
          f"batch 2 x 2048 x 2304, median of {args.repeats}")
    print(f"{'backbone/neck':<26}{'forward s':>11}{'fwd+bwd s':>11}{'infer/video s':>15}{'peak MB':>10}")
    for backbone, neck in pairs:
        res = run_pair((backbone, neck, args.device, args.repeats, args.amp, args.threads),
                       isolate=device.type == "cpu")
        print(f"{backbone + '/' + neck:<26}{res['forward_s']:>11.3f}{res['step_s']:>11.3f}"
              f"{res['infer_s']:>15.3f}{res['peak_mb']:>10.0f}", flush=True)
    print(f"soft-NMS, 2000 candidates x 20 classes: {bench_soft_nms(device, max(args.repeats, 10)) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
