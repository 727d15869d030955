"""``tal-lab study``: the command-line face of :mod:`tal_lab.study` (plan, then run, or look)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from tal_lab.study.launchers import LAUNCHERS, SlurmOptions
from tal_lab.study.params import DATASETS, STUDY_PRESETS, resolve_path
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, TABLES, build_plan
from tal_lab.study.progress import dry_run_text, status_text
from tal_lab.study.replication import compare_marks, replication_summary
from tal_lab.study.runner import LaunchOptions, run_study

__all__ = ["add_study_command", "add_compare_command"]

# The marked tables, their exported numeric frames and their reference rows.
_MARKED_TABLES = (("Table I", "table1_configurations.csv", "original"), ("Table IV", "table4_heads.csv", "actionformer"))


def add_study_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``study`` on the ``tal-lab`` command line (``subparsers`` of argparse)."""
    p = subparsers.add_parser(
        "study", help="run every configuration of Tables I-IV through the notebooks, then tables and reports",
        description="The one-command study: every run Tables I-IV need, through papermill, then tables, "
                    "figures, reports. Runs already finished in the run store are skipped, so a "
                    "killed study continues where it stopped. Runs go on every GPU of the machine "
                    "(--devices), through submitit's local executor or on a Slurm cluster (--launcher); "
                    "docs/scaling.md has the details.", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tal-lab study                                   # synthetic quick preset, "
               "well under an hour on 2 CPU cores\n  tal-lab study --dry-run                         # print "
               "the plan, where each run goes and its time\n  tal-lab study --preset paper --dataset thumos14 "
               "--data-root data/thumos --seeds 3\n  tal-lab study --devices auto --runs-per-device 2     "
               "# every GPU of this node, two runs each\n  tal-lab study --launcher slurm --partition gpu "
               "--time 4:00:00 --preset paper --seeds 3\n  tal-lab study --seeds 3 --table-seeds II=1,III=1   "
               "# 3-seed marks on Tables I/IV, one seed for II/III\n  tal-lab study --status                          "
               "# done / running / queued / failed per run\n")
    _add_arguments(p)
    p.set_defaults(func=_cmd_study)
    return p


_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--preset",), {"choices": STUDY_PRESETS, "default": "quick",
                     "help": "tiny (tests) | quick (synthetic, CPU; default) | paper (the paper's protocol)"}),
    (("--dataset",), {"choices": list(DATASETS), "default": "synthetic", "help": "default synthetic"}),
    (("--data-root",), {"default": "", "help": "dataset folder (required for real datasets)"}),
    (("--config-file",), {"default": "", "help": "ActionFormer YAML for real data (optional)"}),
    (("--seeds",), {"type": int, "default": 1, "help": "training seeds per run (default 1; 3 recommended)"}),
    (("--first-seed",), {"type": int, "default": None,
                         "help": "first of the --seeds consecutive seeds (default 1234567891, ActionFormer's); "
                                 "--seeds 3 --first-seed 1234567894 replicates a 3-seed study on new seeds"}),
    (("--table-seeds",), {"default": "", "metavar": "TABLE=N[,TABLE=N]",
                          "help": "tables that take only the first N of the --seeds, e.g. --seeds 3 "
                                  "--table-seeds II=1,III=1 (marks on Tables I/IV from 3 seeds, one run per "
                                  "Table II/III cell)"}),
    (("--jobs",), {"type": int, "default": None,
                   "help": "runs trained at once (default: one per GPU slot; on the CPU min(2, cores))"}),
    (("--output-root",), {"default": "runs", "help": "the run store (default runs; on a cluster, a shared folder)"}),
    (("--reports",), {"default": "reports", "help": "reports folder (default reports)"}),
    (("--tables",), {"default": ",".join(TABLES), "help": "tables to build, e.g. I,III (default I,II,III,IV)"}),
    (("--configs",), {"default": "", "help": f"Table I rows to run (default all: {','.join(TABLE1_CONFIGURATIONS)})"}),
    (("--table2-runs",), {"choices": ("one", "separate"), "default": "one",
                          "help": "Table II from one run evaluated at each epoch (default) or separate runs"}),
    (("--table4-pair",), {"default": "auto", "help": "Table IV's configuration (default auto: the best of Table I)"}),
    (("--epochs",), {"type": int, "default": None, "help": "Table I / III epochs instead of the preset's"}),
    (("--devices", "--device"), {"default": "auto", "help": "auto (every visible GPU, else the CPU) | cpu | "
                                                            "cuda:0,cuda:1,... (each run's kernel sees only its own)"}),
    (("--runs-per-device",), {"type": int, "default": None, "help": "runs sharing one GPU (default 1)"}),
    (("--gpus-per-run",), {"type": int, "default": 1, "help": "GPUs (processes) per run: K > 1 trains it with "
                                                              "torchrun --nproc_per_node K (gloo ranks on the CPU)"}),
    (("--launcher",), {"choices": LAUNCHERS, "default": "threads", "help": "threads here (default) | local "
                                                                         "(submitit's local executor) | slurm"}),
    (("--retries",), {"type": int, "default": 1, "help": "new attempts for a run whose job died mid-training "
                                                         "(it resumes from its checkpoint; default 1)"}),
    (("--partition",), {"default": "", "help": "slurm: partition"}),
    (("--account",), {"default": "", "help": "slurm: account"}),
    (("--time",), {"default": "4:00:00", "help": "slurm / local: time limit per job (minutes or H:MM:SS; a longer "
                                                 "run is requeued from its checkpoint; default 4:00:00)"}),
    (("--gpus-per-job",), {"type": int, "default": None, "help": "slurm: GPUs per training job (default "
                                                                 "--gpus-per-run; 0 for CPU jobs)"}),
    (("--cpus-per-job",), {"type": int, "default": None, "help": "slurm: CPUs per job (default: the cluster's)"}),
    (("--constraint",), {"default": "", "help": "slurm: node constraint, e.g. h100"}),
    (("--sbatch-extra",), {"action": "append", "default": [], "metavar": "KEY=VALUE",
                           "help": "slurm: another sbatch option (repeatable), e.g. --sbatch-extra qos=high"}),
    (("--set",), {"dest": "overrides", "action": "append", "default": [], "metavar": "KEY=VALUE",
                  "help": "config change for every run (repeatable), e.g. --set engine.ema=false"}),
    (("--notebooks",), {"default": None, "help": "folder of the notebooks (default: the checkout's)"}),
    (("--analyse-only", "--skip-training"), {"action": "store_true", "dest": "analyse_only",
                                             "help": "only tables, figures and reports, from what the store holds"}),
    (("--dry-run",), {"action": "store_true", "help": "print the plan, where each run goes and its estimated time"}),
    (("--status",), {"action": "store_true", "help": "show done / running / queued / failed per run of the "
                                                     "selection, with a failed run's last error lines"}),
)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    for flags, options in _OPTIONS:
        p.add_argument(*flags, **options)


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _table_seeds(text: str) -> dict[str, int]:
    """``II=1,III=1`` as ``{"II": 1, "III": 1}``; build_plan checks the tables and counts."""
    counts: dict[str, int] = {}
    for item in _split(text):
        table, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise ValueError(f"--table-seeds: {item!r} is not TABLE=N (e.g. II=1)")
        counts[table.strip()] = int(count)
    return counts


def _launch_options(args: argparse.Namespace) -> LaunchOptions:
    slurm = SlurmOptions(partition=args.partition, account=args.account, time=args.time,
                         gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job, constraint=args.constraint,
                         extra=tuple(args.sbatch_extra))
    return LaunchOptions(launcher=args.launcher, devices=args.devices, runs_per_device=args.runs_per_device,
                         gpus_per_run=args.gpus_per_run, jobs=args.jobs, retries=args.retries, slurm=slurm)


def _cmd_study(args: argparse.Namespace) -> int:
    plan = build_plan(preset=args.preset, dataset=args.dataset, data_root=args.data_root,
                      config_file=args.config_file, seeds=args.seeds, first_seed=args.first_seed,
                      tables=_split(args.tables),
                      configurations=_split(args.configs) or None, table2_runs=args.table2_runs,
                      table4_pair=args.table4_pair, epochs=args.epochs,
                      table_seeds=_table_seeds(args.table_seeds))
    options = _launch_options(args)
    if args.status:
        text, ok = status_text(plan, resolve_path(args.output_root), resolve_path(args.reports))
        print(text)
        return 0 if ok else 1
    if args.dry_run:
        print(dry_run_text(plan, options))
        return 0
    outcome = run_study(plan, output_root=args.output_root, reports_dir=args.reports, jobs=options.jobs,
                        devices=options.devices, overrides=args.overrides, notebooks=args.notebooks,
                        train=not args.analyse_only, runs_per_device=options.runs_per_device,
                        gpus_per_run=options.gpus_per_run, launcher=options.launcher, slurm=options.slurm,
                        retries=options.retries)
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    return 0 if outcome.ok else 1


def add_compare_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``study-compare``: do two studies' significance marks agree?"""
    p = subparsers.add_parser(
        "study-compare", help="compare the significance marks of two studies (e.g. seeds 1-3 and 4-6)",
        description="Lines up Tables I and IV of two studies' reports (reports/tables/*.csv) row by row: "
                    "each comparison's difference to the reference in both, the pooled seed std, the "
                    "marks, and whether a mark on an effect above the seed noise held "
                    "(tal_lab.study.replication).",
        epilog="example:\n  tal-lab study --tables I,IV --seeds 3\n  tal-lab study --tables I,IV --seeds 3 "
               "--first-seed 1234567894 --output-root runs_rep --reports reports_rep\n"
               "  tal-lab study-compare reports reports_rep", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="the first study's reports folder")
    p.add_argument("second", help="the second study's reports folder")
    p.set_defaults(func=_cmd_compare)
    return p


def _cmd_compare(args: argparse.Namespace) -> int:
    found = 0
    for title, file, reference in _MARKED_TABLES:
        paths = [resolve_path(folder) / "tables" / file for folder in (args.first, args.second)]
        missing = [str(p) for p in paths if not p.is_file()]
        if len(missing) == 2:
            continue
        if missing:
            raise FileNotFoundError(f"{title}: {missing[0]} does not exist (the other study has it)")
        found += 1
        comparison = compare_marks(pd.read_csv(paths[0]), pd.read_csv(paths[1]), reference)
        print(f"{title} (reference {reference}): {args.first} vs {args.second}")
        print(comparison.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print(replication_summary(comparison) + "\n")
    if not found:
        raise FileNotFoundError(f"neither {args.first}/tables nor {args.second}/tables holds Table I or IV")
    return 0
