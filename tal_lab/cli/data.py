"""Command-line subcommands: ``data validate PATH [--config CFG]`` and ``data synth``.

``tal_lab.cli.main`` calls :func:`add_data_commands` with its top-level subparsers; each command
sets ``func`` (``args.func(args)`` returns the exit status).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tal_lab.config import parse_overrides
from tal_lab.data.synthetic import generate_synthetic
from tal_lab.data.validate import validate_dataset

__all__ = ["add_data_commands", "run_validate", "run_synth"]


def run_validate(args: argparse.Namespace) -> int:
    """Print the validation report of ``args.path``; exit status 1 when it has errors."""
    report = validate_dataset(args.path, args.config, check_values=not args.shapes_only)
    print(report.format(limit=args.limit))
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic benchmark folder and print where its config is."""
    knobs: dict[str, Any] = parse_overrides(args.knob) if args.knob else {}
    start = time.perf_counter()
    config_path = generate_synthetic(args.out, args.preset, args.seed, knobs, progress=True)
    print(f"wrote synthetic benchmark '{args.preset}' (seed {args.seed}) to {Path(args.out).resolve()} "
          f"in {time.perf_counter() - start:.1f} s\nconfig: {config_path}")
    return 0


def add_data_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``data`` with its ``validate`` and ``synth`` subcommands."""
    data = subparsers.add_parser("data", help="check dataset folders, generate the synthetic benchmark")
    commands = data.add_subparsers(dest="data_command", required=True)

    validate = commands.add_parser(
        "validate", help="check an ActionFormer-format dataset folder and print every problem")
    validate.add_argument("path", help="dataset folder (or a config YAML)")
    validate.add_argument("--config", default=None,
                          help="config YAML with the dataset settings (default: PATH/config.yaml, else inferred)")
    validate.add_argument("--shapes-only", action="store_true",
                          help="read only array shapes, not values (skips the NaN / inf check; faster)")
    validate.add_argument("--limit", type=int, default=50, help="most problems printed")
    validate.set_defaults(func=run_validate)

    synth = commands.add_parser("synth", help="write the synthetic THUMOS14-shaped benchmark")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--preset", default="quick", choices=("tiny", "quick", "thumos14"), help="size preset")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    synth.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                       help="set a knob, e.g. --knob snr=0 (see docs/data.md); repeatable")
    synth.set_defaults(func=run_synth)
    return data
