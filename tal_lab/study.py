"""The one-command study: every run Tables I-IV need, through papermill, then tables, figures, reports.

``tal-lab study`` (or ``python -m tal_lab.study``): (1) **plan** the runs each table needs at a
preset, deduplicated (:func:`build_plan`; the original at lambda_reg 1 serves Tables I, II and
III); (2) **train** each through ``notebooks/run_ablation.ipynb`` with papermill, ``jobs`` kernels
at a time, skipping runs already finished in the store and resuming unfinished ones (a killed
study continues where it stopped; a failed run is reported and the study goes on); Table IV's
runs join once Table I's are done (the best pair); (3) **analyse** with the ``tables``,
``timelines``, ``feature_diversity`` and ``explore`` notebooks; (4) **export** HTML, figures,
tables and the index page (:mod:`tal_lab.reports`). Table II comes by default from one run
evaluated at the listed epochs (``engine.eval_epochs``), or from separate runs. Each run is
repeated for ``seeds`` training seeds on the same data. docs/notebooks.md has the details.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from tal_lab.config import DEFAULTS, PAPER_CONFIGURATIONS
from tal_lab.notebook_params import (
    BACKBONES, DATASETS, PAPER_EPOCHS, PRESETS, SYNTHETIC_PRESETS, backbone_parameter, base_config, check_choice,
    synthetic_folder)

__all__ = [
    "TABLES", "LOSS_WEIGHTS", "PAPER_TABLE2_EPOCHS", "TABLE4_HEADS", "TABLE1_CONFIGURATIONS", "ANALYSIS_NOTEBOOKS",
    "RunSpec", "StudyPlan", "configuration_types", "scaled_epochs", "seed_list", "build_plan", "table4_specs",
    "add_study_command", "main",
]

TABLES: tuple[str, ...] = ("I", "II", "III", "IV")
# Paper Table III's lambda_reg values and Table II's epochs (50: the official ActionFormer run).
LOSS_WEIGHTS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
PAPER_TABLE2_EPOCHS: tuple[int, ...] = (1, 4, 8, 15, 25, 50)
TABLE4_HEADS: tuple[str, ...] = ("actionformer", "trident", "decoupled")
# Table I's rows as (backbone parameter, neck): the paper's six and issue 7's max-pool row.
TABLE1_CONFIGURATIONS: dict[str, tuple[str, str]] = {
    **{name: (backbone_parameter(c["backbone_type"]), c["fpn_type"]) for name, c in PAPER_CONFIGURATIONS.items()},
    "maxpool": ("maxpool", "identity"),
}
# Notebooks run after training, in order; each writes into the reports folder.
ANALYSIS_NOTEBOOKS: tuple[str, ...] = ("tables", "timelines", "feature_diversity", "explore")


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study (notebook parameter names; ``uses`` says which table cells).

    Two specs with the same :attr:`key` are the same run; merging unites their ``uses`` and
    ``eval_epochs``.
    """

    backbone: str
    neck: str
    head: str
    epochs: int
    loss_weight: float
    seed: int
    eval_epochs: tuple[int, ...] = ()
    uses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, int, float, int]:
        return (self.backbone, self.neck, self.head, self.epochs, float(self.loss_weight), self.seed)

    def merged(self, other: "RunSpec") -> "RunSpec":
        return replace(self, eval_epochs=tuple(sorted(set(self.eval_epochs) | set(other.eval_epochs))),
                       uses=tuple(dict.fromkeys(self.uses + other.uses)))

    def run_name(self, data_tag: str) -> str:
        """The run store folder name, as ``tal_lab.runs.default_run_name`` forms it."""
        return (f"{data_tag}-{BACKBONES[self.backbone]}-{self.neck}-{self.head}-lw{float(self.loss_weight):g}"
                f"-e{self.epochs}-s{self.seed}")


@dataclass
class StudyPlan:
    """Everything the study will run, and where."""

    preset: str
    dataset: str
    data_root: str
    config_file: str
    data_tag: str
    table1_epochs: int
    table2_epochs: tuple[int, ...]
    table2_runs: str
    seeds: tuple[int, ...]
    tables: tuple[str, ...]
    configurations: tuple[str, ...]
    table4_pair: str
    runs: list[RunSpec] = field(default_factory=list)

    def run_names(self) -> list[str]:
        return [spec.run_name(self.data_tag) for spec in self.runs]

    def describe(self) -> str:
        """The plan as text (what ``--dry-run`` prints)."""
        lines = [f"study plan: dataset {self.dataset} ({self.data_tag}), preset {self.preset}, "
                 f"{len(self.seeds)} seed(s) {list(self.seeds)}",
                 f"  Table I epochs: {self.table1_epochs}; Table II epochs: {list(self.table2_epochs)} "
                 f"({'one run evaluated at each' if self.table2_runs == 'one' else 'separate runs'}); "
                 f"tables {', '.join(self.tables)}",
                 f"  {len(self.runs)} run(s) after removing duplicates:"]
        for spec in self.runs:
            extra = f", evaluated also at epochs {list(spec.eval_epochs)}" if spec.eval_epochs else ""
            lines.append(f"    {spec.run_name(self.data_tag)}  [{'; '.join(spec.uses)}]{extra}")
        if "IV" in self.tables:
            pair = ("the best backbone / neck pair of Table I (chosen after its runs)" if self.table4_pair == "auto"
                    else f"configuration {self.table4_pair}")
            lines.append(f"  Table IV: heads {list(TABLE4_HEADS)} x {len(self.seeds)} seed(s) on {pair}")
        return "\n".join(lines)


def configuration_types(name: str) -> tuple[str, str]:
    """(backbone_type, fpn_type) of a Table I configuration ('original', 'A'-'E', 'maxpool')."""
    if name not in TABLE1_CONFIGURATIONS:
        raise ValueError(f"unknown configuration {name!r}; choose from {list(TABLE1_CONFIGURATIONS)}")
    backbone, neck = TABLE1_CONFIGURATIONS[name]
    return BACKBONES[backbone], neck


def scaled_epochs(epochs: int, reference: Sequence[int] = PAPER_TABLE2_EPOCHS) -> tuple[int, ...]:
    """The paper's Table II epoch list rescaled so that its last entry is ``epochs``."""
    top = reference[-1]
    return tuple(sorted({max(1, round(e * epochs / top)) for e in reference}))


def seed_list(count: int, base: int | None = None) -> tuple[int, ...]:
    """``count`` training seeds starting at ActionFormer's default seed."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"seeds must be a positive integer, got {count!r}")
    start = int(DEFAULTS["init_rand_seed"]) if base is None else int(base)
    return tuple(start + i for i in range(count))


def _add(specs: dict[tuple, RunSpec], spec: RunSpec) -> None:
    specs[spec.key] = specs[spec.key].merged(spec) if spec.key in specs else spec


def build_plan(
    preset: str = "quick",
    dataset: str = "synthetic",
    data_root: str = "",
    config_file: str = "",
    seeds: int = 1,
    tables: Sequence[str] = TABLES,
    configurations: Sequence[str] | None = None,
    table2_runs: str = "one",
    table4_pair: str = "auto",
    epochs: int | None = None,
    base_cfg: Mapping[str, Any] | None = None,
) -> StudyPlan:
    """The deduplicated runs of the study (Table IV's are added once Table I is done, unless
    ``table4_pair`` names a configuration).

    Args:
        base_cfg: the dataset's base config (default: built from dataset / data_root / preset,
            which generates the synthetic data if needed); it gives the preset's epochs.
        epochs: Table I / III epochs instead of the preset's.
        configurations: Table I rows to run (default all: original, A-E, maxpool).

    Raises:
        ValueError: unknown preset, dataset, table, configuration or option.
    """
    check_choice("preset", preset, PRESETS)
    check_choice("dataset", dataset, DATASETS)
    check_choice("table2_runs", table2_runs, ("one", "separate"))
    unknown = [t for t in tables if t not in TABLES]
    if unknown or not tables:
        raise ValueError(f"unknown table(s) {unknown or list(tables)}; choose from {list(TABLES)}")
    configurations = tuple(configurations or TABLE1_CONFIGURATIONS)
    unknown = [c for c in configurations if c not in TABLE1_CONFIGURATIONS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {list(TABLE1_CONFIGURATIONS)}")
    if table4_pair != "auto" and table4_pair not in TABLE1_CONFIGURATIONS:
        raise ValueError(f"table4_pair {table4_pair!r} is not 'auto' or one of {list(TABLE1_CONFIGURATIONS)}")
    if base_cfg is None and dataset == "synthetic" and not config_file:
        # The plan needs only the preset's epochs: no data is generated for a dry run.
        data_root = str(synthetic_folder(preset, data_root))
        data_tag = f"synthetic-{SYNTHETIC_PRESETS[preset]}"
        preset_epochs = _synthetic_epochs(preset, Path(data_root))
    else:
        cfg = base_cfg if base_cfg is not None else base_config(dataset, data_root, preset, config_file)
        data_tag = (f"synthetic-{cfg['dataset']['synthetic']['preset']}" if cfg["dataset_name"] == "synthetic"
                    else cfg["dataset_name"])
        preset_epochs = int(cfg["opt"]["epochs"])
    t1_epochs = int(epochs) if epochs is not None else preset_epochs
    if preset == "paper" and dataset in ("synthetic", "thumos14") and epochs is None:
        t2_epochs = PAPER_TABLE2_EPOCHS
    else:
        t2_epochs = scaled_epochs(t1_epochs)
    plan = StudyPlan(preset=preset, dataset=dataset, data_root=str(data_root), config_file=config_file,
                     data_tag=data_tag, table1_epochs=t1_epochs, table2_epochs=tuple(t2_epochs),
                     table2_runs=table2_runs, seeds=seed_list(seeds), tables=tuple(tables),
                     configurations=configurations, table4_pair=table4_pair)
    specs: dict[tuple, RunSpec] = {}
    original = TABLE1_CONFIGURATIONS["original"]
    for seed in plan.seeds:
        if "I" in tables:
            for name in configurations:
                backbone, neck = TABLE1_CONFIGURATIONS[name]
                _add(specs, RunSpec(backbone, neck, "actionformer", t1_epochs, 1.0, seed, uses=(f"I:{name}",)))
        if "II" in tables:
            if table2_runs == "one":  # every listed epoch is evaluated; the last evaluation is after warm-up
                _add(specs, RunSpec(*original, "actionformer", t2_epochs[-1], 1.0, seed, tuple(t2_epochs), ("II",)))
            else:
                for e in t2_epochs:
                    _add(specs, RunSpec(*original, "actionformer", e, 1.0, seed, uses=(f"II:{e}",)))
        if "III" in tables:
            for weight in LOSS_WEIGHTS:
                _add(specs, RunSpec(*original, "actionformer", t1_epochs, weight, seed, uses=(f"III:{weight:g}",)))
        if "IV" in tables and table4_pair != "auto":
            for spec in table4_specs(plan, table4_pair, seed):
                _add(specs, spec)
    plan.runs = list(specs.values())
    return plan


def _synthetic_epochs(preset: str, folder: Path) -> int:
    """opt.epochs of the synthetic benchmark's config (generated or still to be generated)."""
    from tal_lab.config import load_config

    if (folder / "config.yaml").is_file():
        return int(load_config(folder / "config.yaml")["opt"]["epochs"])
    if preset == "paper":
        return PAPER_EPOCHS
    from tal_lab.data.synthetic_spec import get_preset

    return int(get_preset(SYNTHETIC_PRESETS[preset]).opt["epochs"])


def table4_specs(plan: StudyPlan, pair: str, seed: int) -> list[RunSpec]:
    """Table IV's runs (one per head) on configuration ``pair`` for one seed."""
    backbone, neck = TABLE1_CONFIGURATIONS[pair]
    return [RunSpec(backbone, neck, head, plan.table1_epochs, 1.0, seed, uses=(f"IV:{head}@{pair}",))
            for head in TABLE4_HEADS]


def add_study_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``study`` on the ``tal-lab`` command line (``subparsers`` of argparse)."""
    p = subparsers.add_parser(
        "study", help="run every configuration of Tables I-IV through the notebooks, then tables and reports",
        description=__doc__.split("\n\n")[0] + " Runs already finished in the run store are skipped, so a "
                    "killed study continues where it stopped.", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tal-lab study                                   # synthetic quick preset, "
               "well under an hour on 2 CPU cores\n  tal-lab study --dry-run                         # print "
               "the plan\n  tal-lab study --preset paper --dataset thumos14 --data-root data/thumos --seeds 3\n")
    _add_arguments(p)
    p.set_defaults(func=_cmd_study)
    return p


_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--preset", {"choices": PRESETS, "default": "quick", "help": "tiny (tests) | quick (synthetic, CPU; default) | "
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
    from tal_lab.study_runner import run_study

    outcome = run_study(plan, output_root=args.output_root, reports_dir=args.reports, jobs=args.jobs,
                        device=args.device, overrides=args.overrides, notebooks=args.notebooks,
                        train=not args.skip_training)
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    return 0 if outcome.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tal_lab.study [options]`` (the same options as ``tal-lab study``)."""
    parser = argparse.ArgumentParser(prog="python -m tal_lab.study", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _cmd_study(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"tal-lab study: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
