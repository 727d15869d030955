"""The ``tal-lab`` command line (also ``python -m tal_lab``).

Commands::

    tal-lab train CONFIG [--set key=value ...] [--output-root DIR] [--name NAME] [--resume]
    tal-lab eval CONFIG CKPT [--weights ema|model] [--out DIR]
    tal-lab detect CONFIG CKPT FEATURES [--fps F] [--stride S] [--num-frames N] [--out FILE.csv|.json]
    tal-lab runs ls [ROOT]
    tal-lab data validate PATH | tal-lab data synth OUT      (the data tools)
    tal-lab study ...                                         (the notebook study)

Every command sets ``func`` on its parser; ``func(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from tal_lab import __version__
from tal_lab.cli.data import add_data_commands
from tal_lab.cli.study import add_compare_command, add_study_command
from tal_lab.config import RECIPES
from tal_lab.core.atomic_io import write_csv_atomic, write_text_atomic
from tal_lab.engine import detect, evaluate, train
from tal_lab.runs import DEFAULT_RUN_STORE, load_run, load_runs

__all__ = ["build_parser", "main"]

_EPILOG = """\
examples:
  tal-lab data synth --preset quick data/synth_quick          # a small THUMOS14-like dataset
  tal-lab train data/synth_quick/config.yaml                  # train + evaluate the original ActionFormer
  tal-lab train data/synth_quick/config.yaml --set model.backbone_type=sgp
  tal-lab train configs/thumos_i3d.yaml --output-root runs    # an official ActionFormer config
  tal-lab runs ls runs                                        # one line per run, with mAP
  tal-lab eval CONFIG runs/NAME/checkpoints/last.pt
  tal-lab detect CONFIG CKPT video.npy --fps 30 --out video_detections.csv

multi-GPU: torchrun --nproc_per_node 2 -m tal_lab train CONFIG
"""


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set opt.epochs=10 --set model.fpn_type=fpn "
                             "(values in YAML syntax; repeat for several)")


def _add_recipe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", choices=RECIPES, default=None,
                        help="read the config in this repository's dialect (its defaults and recipe); by default "
                             "the config's 'recipe' key, else its keys tell (TriDet's keys: tridet), logged at load")


def _overrides(args: argparse.Namespace) -> list[str]:
    """The --set overrides, with --recipe as the override that names the dialect."""
    return [*args.overrides, f"recipe={args.recipe}"] if args.recipe else list(args.overrides)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _cmd_train(args: argparse.Namespace) -> int:
    run_dir = train(args.config, output_root=args.output_root, run_name=args.name, resume=args.resume,
                    progress=False if args.no_progress else None, overrides=_overrides(args))
    run = load_run(run_dir)
    if run.results:
        print(_format_map(run.results, title=f"{run.name} ({run.results.get('weights')} weights, "
                                              f"epoch {run.results.get('checkpoint_epoch')})"))
    print(f"run folder: {run_dir}")
    return 0


def _format_map(results: dict[str, Any], title: str) -> str:
    heads = [f"mAP@{t:g}" for t in results["tiou_thresholds"]] + ["avg"]
    values = [100.0 * m for m in results["mAP"]] + [100.0 * results["average_mAP"]]
    width = max(len(h) for h in heads) + 1
    return "\n".join([title, "".join(h.rjust(width) for h in heads), "".join(f"{v:{width}.2f}" for v in values)])


def _cmd_eval(args: argparse.Namespace) -> int:

    result = evaluate(args.config, args.checkpoint, weights=args.weights, output=args.out,
                      progress=False if args.no_progress else None, overrides=_overrides(args))
    print(_format_map(result.summary(), title=f"{args.checkpoint} ({result.weights} weights, "
                                              f"{result.num_videos} videos, {result.seconds:.1f} s)"))
    if args.out:
        print(f"wrote {Path(args.out) / 'detections.csv'} and {Path(args.out) / 'results.json'}")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:

    frame = detect(args.config, args.checkpoint, args.features, fps=args.fps, feat_stride=args.stride,
                   num_frames=args.num_frames, weights=args.weights, duration=args.duration,
                   overrides=args.overrides)
    if args.top:
        frame = frame.head(args.top)
    if args.out is None:
        print(frame.to_string(index=False) if len(frame) else "no detections")
        return 0
    out = Path(args.out)
    if out.suffix == ".json":
        video = Path(args.features).stem
        records = [{"segment": [float(r["t-start"]), float(r["t-end"])], "label": int(r["label"]),
                    "score": float(r["score"]), **({"label_name": r["label_name"]} if "label_name" in r else {})}
                   for r in frame.to_dict("records")]
        write_text_atomic(out, json.dumps({"results": {video: records}}, indent=1) + "\n")
    elif out.suffix == ".csv":
        write_csv_atomic(out, frame)
    else:
        raise SystemExit(f"--out must end in .csv or .json, got {out}")
    print(f"wrote {len(frame)} detections to {out}")
    return 0


def _cmd_runs_ls(args: argparse.Namespace) -> int:
    frame = load_runs(args.root)
    if frame.empty:
        print(f"no runs under {args.root}")
        return 0
    columns = ["name", "status", "epochs", "mAP@0.3", "mAP@0.5", "mAP@0.7", "avg_mAP", "weights", "sec_per_epoch"]
    if args.all:
        columns = list(frame.columns)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(frame[columns].round(2).to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``tal-lab`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tal-lab", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG,
        description="tal_lab: train, evaluate and compare Temporal Action Localization models "
                    "(ActionFormer with transformer / conv / SGP backbones and identity / FPN necks).")
    parser.add_argument("--version", action="version", version=f"tal_lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one configuration, evaluate it, record it in the run store",
                       description="Train as ActionFormer trains (AdamW, warm-up + cosine, EMA), evaluate after "
                                   "the last epoch, and write a run folder OUTPUT_ROOT/NAME with config, "
                                   "logs, checkpoints, detections and results.")
    p.add_argument("config", help="config YAML (tal_lab's, or an official ActionFormer or TriDet one)")
    _add_set(p)
    _add_recipe(p)
    p.add_argument("--output-root", default=DEFAULT_RUN_STORE,
                   help=f"run store folder (default: {DEFAULT_RUN_STORE}, as the notebooks and the study)")
    p.add_argument("--name", default=None,
                   help="run folder name (default: {dataset}-{backbone}-{neck}-{head}-lw{loss_weight}-e{epochs}-s{seed})")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in that folder from its last checkpoint (a finished run is left as is)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on the config's evaluation split")
    p.add_argument("config", help="config YAML the checkpoint was trained with")
    p.add_argument("checkpoint", help="checkpoint (.pt of a run, or an official ActionFormer .pth.tar)")
    p.add_argument("--weights", choices=("ema", "model"), default="ema",
                   help="EMA weights (what ActionFormer evaluates; default) or the raw model weights")
    p.add_argument("--out", default=None, help="folder for detections.csv and results.json")
    _add_set(p)
    _add_recipe(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("detect", help="detect actions in one video's feature file",
                       description="Run a checkpoint on one video's features (.npy of shape (T, C), or .npz "
                                   "with key 'feats') and print or save its detections in seconds.")
    p.add_argument("config", help="config YAML the checkpoint was trained with")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("features", help="feature file of one video")
    p.add_argument("--fps", type=float, default=None, help="video frame rate (default: dataset.default_fps)")
    p.add_argument("--stride", type=float, default=None,
                   help="frames between feature steps (default: dataset.feat_stride)")
    p.add_argument("--num-frames", type=float, default=None,
                   help="frames per feature window (default: dataset.num_frames)")
    p.add_argument("--duration", type=float, default=None,
                   help="video length in seconds (default: the span the features cover)")
    p.add_argument("--weights", choices=("ema", "model"), default="ema", help="which weights (default ema)")
    p.add_argument("--top", type=int, default=None, help="keep only the N best detections")
    p.add_argument("--out", default=None, help="write detections to FILE.csv or FILE.json (default: print)")
    _add_set(p)
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser("runs", help="inspect the run store")
    runs_sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    ls = runs_sub.add_parser("ls", help="list the runs under ROOT with their mAP (percent)")
    ls.add_argument("root", nargs="?", default=DEFAULT_RUN_STORE,
                    help=f"run store folder (default: {DEFAULT_RUN_STORE})")
    ls.add_argument("--all", action="store_true", help="print every column")
    ls.set_defaults(func=_cmd_runs_ls)

    add_data_commands(sub)
    add_study_command(sub)
    add_compare_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tal-lab``; returns the exit status (1 with a one-line error on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        if args.verbose:
            raise
        print(f"tal-lab {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
