"""``tal-lab study``: the command-line face of :mod:`tal_lab.study` (plan, then run)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tal_lab.study.params import DATASETS, STUDY_PRESETS
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, TABLES, build_plan
from tal_lab.study.runner import run_study

__all__ = ["add_study_command"]


def add_study_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``study`` on the ``tal-lab`` command line (``subparsers`` of argparse)."""
    p = subparsers.add_parser(
        "study", help="run every configuration of Tables I-IV through the notebooks, then tables and reports",
        description="The one-command study: every run Tables I-IV need, through papermill, then tables, "
                    "figures, reports. Runs already finished in the run store are skipped, so a "
                    "killed study continues where it stopped.", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tal-lab study                                   # synthetic quick preset, "
               "well under an hour on 2 CPU cores\n  tal-lab study --dry-run                         # print "
               "the plan\n  tal-lab study --preset paper --dataset thumos14 --data-root data/thumos --seeds 3\n")
    _add_arguments(p)
    p.set_defaults(func=_cmd_study)
    return p


_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--preset", {"choices": STUDY_PRESETS, "default": "quick", "help": "tiny (tests) | quick (synthetic, CPU; default) | "
                                                                  "paper (the paper's protocol)"}),
    ("--dataset", {"choices": list(DATASETS), "default": "synthetic", "help": "default synthetic"}),
    ("--data-root", {"default": "", "help": "dataset folder (required for real datasets)"}),
    ("--config-file", {"default": "", "help": "ActionFormer YAML for real data (optional)"}),
    ("--seeds", {"type": int, "default": 1, "help": "training seeds per run (default 1; 3 recommended)"}),
    ("--jobs", {"type": int, "default": None, "help": "runs trained at once (default min(2, CPU cores))"}),
    ("--output-root", {"default": "runs", "help": "the run store (default runs)"}),
    ("--reports", {"default": "reports", "help": "reports folder (default reports)"}),
    ("--tables", {"default": ",".join(TABLES), "help": "tables to build, e.g. I,III (default I,II,III,IV)"}),
    ("--configs", {"default": "", "help": f"Table I rows to run (default all: {','.join(TABLE1_CONFIGURATIONS)})"}),
    ("--table2-runs", {"choices": ("one", "separate"), "default": "one",
                       "help": "Table II from one run evaluated at each epoch (default) or separate runs"}),
    ("--table4-pair", {"default": "auto", "help": "Table IV's configuration (default auto: the best of Table I)"}),
    ("--epochs", {"type": int, "default": None, "help": "Table I / III epochs instead of the preset's"}),
    ("--device", {"default": "auto", "help": "auto | cpu | cuda | cuda:N"}),
    ("--set", {"dest": "overrides", "action": "append", "default": [], "metavar": "KEY=VALUE",
               "help": "config change for every run (repeatable), e.g. --set engine.ema=false"}),
    ("--notebooks", {"default": None, "help": "folder of the notebooks (default: the checkout's)"}),
    ("--skip-training", {"action": "store_true", "help": "only tables, figures and reports"}),
    ("--dry-run", {"action": "store_true", "help": "print the plan and exit"}),
)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    for flag, options in _OPTIONS:
        p.add_argument(flag, **options)


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _cmd_study(args: argparse.Namespace) -> int:
    plan = build_plan(preset=args.preset, dataset=args.dataset, data_root=args.data_root,
                      config_file=args.config_file, seeds=args.seeds, tables=_split(args.tables),
                      configurations=_split(args.configs) or None, table2_runs=args.table2_runs,
                      table4_pair=args.table4_pair, epochs=args.epochs)
    if args.dry_run:
        print(plan.describe())
        return 0
    outcome = run_study(plan, output_root=args.output_root, reports_dir=args.reports, jobs=args.jobs,
                        device=args.device, overrides=args.overrides, notebooks=args.notebooks,
                        train=not args.skip_training)
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    return 0 if outcome.ok else 1
