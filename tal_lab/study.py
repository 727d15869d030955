"""The one-command study: every run Tables I-IV need, through papermill, then tables, figures, reports.

``tal-lab study`` (or ``python -m tal_lab.study``) does, in order:

1. **Plan** (:func:`build_plan`): the runs each table needs at the chosen preset, deduplicated
   (the original configuration at lambda_reg 1 is one run shared by Tables I, II and III).

   * Table I: the original and configurations A-E (``tal_lab.config.PAPER_CONFIGURATIONS``)
     plus the max-pool backbone row, at the preset's epochs.
   * Table II: the original at the epoch list (the paper's 1, 4, 8, 15, 25, 50 with
     ``preset=paper``; the same list scaled to the preset's epochs otherwise), by default from
     ONE run evaluated at the listed epochs (``engine.eval_epochs``), or ``--table2-runs
     separate`` runs of each length.
   * Table III: the original with lambda_reg in {0.2, 0.5, 1, 2, 5}.
   * Table IV: the heads (actionformer, trident, decoupled) on the best backbone / neck pair
     of Table I (chosen once Table I's runs are done; ``--table4-pair`` fixes it instead).

   Each run is repeated for ``--seeds`` training seeds (the data stay the same).
2. **Train**: each run executes ``notebooks/run_ablation.ipynb`` with papermill, ``--jobs``
   at a time (separate kernel processes). Runs already finished in the store are skipped, and
   unfinished ones resume from their last checkpoint, so a killed study continues where it
   stopped. A failed run is reported and the study goes on without it.
3. **Analyse**: ``tables.ipynb``, ``timelines.ipynb``, ``feature_diversity.ipynb`` and
   ``explore.ipynb`` run on the store.
4. **Export** (:mod:`tal_lab.reports`): HTML of every executed notebook, figures (PNG + SVG),
   tables (CSV / Markdown / LaTeX) and ``reports/index.html`` + ``reports/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tal_lab.config import DEFAULTS, PAPER_CONFIGURATIONS
from tal_lab.reports import execute_notebook, export_reports, notebook_error
from tal_lab.notebook_params import (
    BACKBONES, DATASETS, PAPER_EPOCHS, PRESETS, SYNTHETIC_PRESETS, backbone_parameter, base_config, check_choice,
    check_device, project_root, resolve_path, synthetic_folder)

__all__ = [
    "TABLES", "LOSS_WEIGHTS", "PAPER_TABLE2_EPOCHS", "TABLE4_HEADS", "TABLE1_CONFIGURATIONS", "ANALYSIS_NOTEBOOKS",
    "RunSpec", "StudyPlan", "configuration_types", "scaled_epochs", "seed_list", "build_plan", "table4_specs", "best_pair",
    "run_is_finished", "notebooks_dir", "run_study", "add_study_command", "main",
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
            if table2_runs == "one":
                listed = tuple(e for e in t2_epochs if e != t2_epochs[-1])
                _add(specs, RunSpec(*original, "actionformer", t2_epochs[-1], 1.0, seed, listed, ("II",)))
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


def best_pair(plan: StudyPlan, output_root: Path) -> str:
    """The Table I configuration with the highest mean average mAP in the store (the paper's best,
    E, when no Table I run has finished)."""
    from tal_lab.runs import load_run

    scores: dict[str, list[float]] = {}
    for spec in plan.runs:
        for use in spec.uses:
            if use.startswith("I:"):
                path = output_root / spec.run_name(plan.data_tag)
                if run_is_finished(path):
                    scores.setdefault(use[2:], []).append(float(load_run(path).results["average_mAP"]))
    if not scores:
        return "E"
    return max(scores, key=lambda name: (sum(scores[name]) / len(scores[name]), name == "E"))


def run_is_finished(run_dir: Path) -> bool:
    """True when the run store holds a finished run (status and results) in ``run_dir``."""
    info, results = run_dir / "run.json", run_dir / "results.json"
    if not (info.is_file() and results.is_file()):
        return False
    try:
        return json.loads(info.read_text()).get("status") == "finished"
    except json.JSONDecodeError:
        return False


def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout tal_lab runs from (the study needs a checkout, not a wheel)."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not (folder / "run_ablation.ipynb").is_file():
        root = project_root()
        if root is not None and (root / "notebooks" / "run_ablation.ipynb").is_file():
            return root / "notebooks"
        raise FileNotFoundError(f"notebooks/run_ablation.ipynb not found beside the package ({folder}); run the "
                                f"study from a clone of tal_lab (pip install -e .) or pass --notebooks DIR")
    return folder


@dataclass
class StudyOutcome:
    """What a study did: run names per outcome, the notebooks executed and the index page."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notebooks: list[Path] = field(default_factory=list)
    index: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Context:
    plan: StudyPlan
    output_root: Path
    reports_dir: Path
    notebooks: Path
    cwd: Path
    device: str
    overrides: tuple[str, ...]
    num_threads: int
    log: Callable[[str], None]

    @property
    def work_dir(self) -> Path:
        return self.reports_dir / "_work"

    def run_parameters(self, spec: RunSpec) -> dict[str, Any]:
        name = spec.run_name(self.plan.data_tag)
        return {"backbone": spec.backbone, "neck": spec.neck, "head": spec.head, "epochs": spec.epochs,
                "loss_weight": float(spec.loss_weight), "seed": spec.seed, "dataset": self.plan.dataset,
                "data_root": self.plan.data_root, "config_file": self.plan.config_file, "preset": self.plan.preset,
                "device": self.device, "output_root": str(self.output_root), "run_name": name,
                "eval_epochs": list(spec.eval_epochs), "overrides": list(self.overrides),
                "num_threads": self.num_threads, "output_dir": str(self.reports_dir / "runs" / name)}


def _check_eval_epochs(ctx: _Context, spec: RunSpec, run_dir: Path) -> None:
    """Warn when a finished run lacks evaluations the plan wants from it (Table II)."""
    if not spec.eval_epochs:
        return
    from tal_lab.config import load_config

    have = set(load_config(run_dir / "config.yaml")["engine"]["eval_epochs"])
    missing = sorted(set(spec.eval_epochs) - have)
    if missing:
        ctx.log(f"  note: {run_dir.name} was trained without evaluations at epochs {missing}; Table II will lack "
                f"them (delete the run folder to train it again)")


def _train_all(ctx: _Context, jobs: int, outcome: StudyOutcome) -> None:
    """Execute run_ablation.ipynb for every planned run, ``jobs`` at a time; Table IV joins the
    queue once Table I's runs are settled."""
    plan = ctx.plan
    pending = list(plan.runs)
    table4_waiting = "IV" in plan.tables and plan.table4_pair == "auto"
    table1_keys = {s.key for s in plan.runs if any(u.startswith("I:") for u in s.uses)}
    settled: set[tuple] = set()
    running: dict[Future, RunSpec] = {}
    started: dict[tuple, float] = {}
    total = len(plan.runs) + (len(TABLE4_HEADS) * len(plan.seeds) if table4_waiting else 0)
    count = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                count += 1
                name = spec.run_name(plan.data_tag)
                run_dir = ctx.output_root / name
                if run_is_finished(run_dir):
                    ctx.log(f"[{count}/{total}] {name}: finished earlier, skipped")
                    _check_eval_epochs(ctx, spec, run_dir)
                    outcome.skipped.append(name)
                    settled.add(spec.key)
                    continue
                ctx.log(f"[{count}/{total}] {name}: training ({'; '.join(spec.uses)})")
                started[spec.key] = time.perf_counter()
                output = ctx.work_dir / "runs" / f"{name}.ipynb"
                running[pool.submit(execute_notebook, ctx.notebooks / "run_ablation.ipynb", output,
                                    ctx.run_parameters(spec), ctx.cwd)] = spec
            if running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    spec = running.pop(future)
                    name = spec.run_name(plan.data_tag)
                    seconds = time.perf_counter() - started[spec.key]
                    settled.add(spec.key)
                    err = future.exception()
                    outcome.notebooks.append(ctx.work_dir / "runs" / f"{name}.ipynb")
                    if err is None:
                        outcome.trained.append(name)
                        ctx.log(f"  {name}: done in {seconds / 60:.1f} min")
                    else:
                        outcome.failed[name] = notebook_error(err)
                        ctx.log(f"  {name}: FAILED after {seconds / 60:.1f} min: {outcome.failed[name]}")
            if table4_waiting and table1_keys <= settled:
                table4_waiting = False
                pair = best_pair(plan, ctx.output_root)
                ctx.log(f"Table IV: heads on configuration {pair} (best mean average mAP of Table I)")
                known = {s.key: i for i, s in enumerate(plan.runs)}
                for seed in plan.seeds:
                    for spec in table4_specs(plan, pair, seed):
                        if spec.key in known:  # the actionformer head is a Table I run
                            plan.runs[known[spec.key]] = plan.runs[known[spec.key]].merged(spec)
                            total -= 1
                        else:
                            plan.runs.append(spec)
                            pending.append(spec)


def _analysis_parameters(ctx: _Context, name: str) -> dict[str, Any]:
    """Parameters of each analysis notebook: the store, the data and where files go."""
    plan = ctx.plan
    common = {"runs_root": str(ctx.output_root), "data_tag": plan.data_tag,
              "output_dir": str(ctx.reports_dir / ("tables" if name == "tables" else "figures"))}
    table1 = {use[2:]: spec.run_name(plan.data_tag) for spec in plan.runs for use in spec.uses
              if use.startswith("I:") and spec.seed == plan.seeds[0]}
    if name == "tables":
        return {**common, "table1_epochs": plan.table1_epochs, "tables": list(plan.tables),
                "table2_source": "epoch_evals" if plan.table2_runs == "one" else "runs",
                "table4_pair": plan.table4_pair}
    if name == "timelines":  # the original, the paper's best (E) and two more
        return {**common, "runs": [table1[k] for k in ("original", "E", "A", "D") if k in table1]}
    if name == "feature_diversity":  # one run per backbone, all with the original neck
        return {**common, "runs": [table1[k] for k in ("original", "B", "E", "maxpool") if k in table1],
                "device": ctx.device if ctx.device != "auto" else "cpu", "num_threads": ctx.num_threads}
    return common


def _analyse(ctx: _Context, jobs: int, outcome: StudyOutcome) -> None:
    """Run the analysis notebooks (independent of each other), ``jobs`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {}
        for name in ANALYSIS_NOTEBOOKS:
            output = ctx.work_dir / "notebooks" / f"{name}.ipynb"
            ctx.log(f"analysis: {name}.ipynb")
            futures[pool.submit(execute_notebook, ctx.notebooks / f"{name}.ipynb", output,
                                _analysis_parameters(ctx, name), ctx.cwd)] = name
            outcome.notebooks.append(output)
        for future in futures:
            err = future.exception()
            if err is not None:  # one failed notebook must not stop the others
                outcome.failed[f"{futures[future]}.ipynb"] = notebook_error(err)
                ctx.log(f"  {futures[future]}: FAILED: {notebook_error(err)}")
    ctx.log(f"analysis: done in {time.perf_counter() - started:.0f} s")


def run_study(
    plan: StudyPlan,
    output_root: str | Path = "runs",
    reports_dir: str | Path = "reports",
    jobs: int | None = None,
    device: str = "auto",
    overrides: Sequence[str] = (),
    notebooks: str | Path | None = None,
    train: bool = True,
    log: Callable[[str], None] | None = None,
) -> StudyOutcome:
    """Train every run of ``plan`` (skipping finished ones), run the analysis notebooks and
    export the reports; returns what happened (failed runs are listed, not raised).

    Args:
        jobs: runs trained at once (separate kernels); default min(2, CPU cores).
        device: the notebooks' ``device`` parameter.
        overrides: ``key=value`` config changes given to every run.
        train: False skips training (tables and figures from what the store holds).
    """
    log = log or (lambda line: print(line, flush=True))
    cores = os.cpu_count() or 1
    jobs = jobs if jobs is not None else min(2, cores)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    check_device(device)
    ctx = _Context(plan=plan, output_root=resolve_path(output_root), reports_dir=resolve_path(reports_dir),
                   notebooks=Path(notebooks).resolve() if notebooks else notebooks_dir(),
                   cwd=project_root() or Path.cwd(), device=device, overrides=tuple(overrides),
                   num_threads=max(1, cores // jobs), log=log)
    ctx.output_root.mkdir(parents=True, exist_ok=True)
    outcome = StudyOutcome()
    start = time.perf_counter()
    if train:
        log(plan.describe())
        # Data first, once: parallel notebooks then find it (the synthetic benchmark is generated here).
        base_config(plan.dataset, plan.data_root, plan.preset, plan.config_file)
        _train_all(ctx, jobs, outcome)
        log(f"training: {len(outcome.trained)} trained, {len(outcome.skipped)} skipped, "
            f"{len(outcome.failed)} failed in {(time.perf_counter() - start) / 60:.1f} min")
    _analyse(ctx, jobs, outcome)
    outcome.index = export_reports(ctx.reports_dir, plan_text=plan.describe(), failed=outcome.failed, log=log)
    log(f"reports: {outcome.index} ({(time.perf_counter() - start) / 60:.1f} min in all)")
    return outcome


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


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=PRESETS, default="quick",
                   help="tiny (tests) | quick (synthetic, CPU, default) | paper (the paper's protocol)")
    p.add_argument("--dataset", choices=list(DATASETS), default="synthetic", help="default synthetic")
    p.add_argument("--data-root", default="", help="dataset folder (required for real datasets)")
    p.add_argument("--config-file", default="", help="ActionFormer YAML for real data (optional)")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per run (default 1; 3 recommended)")
    p.add_argument("--jobs", type=int, default=None, help="runs trained at once (default min(2, CPU cores))")
    p.add_argument("--output-root", default="runs", help="the run store (default runs)")
    p.add_argument("--reports", default="reports", help="reports folder (default reports)")
    p.add_argument("--tables", default=",".join(TABLES), help="tables to build, e.g. I,III (default I,II,III,IV)")
    p.add_argument("--configs", default="", help=f"Table I rows to run (default all: "
                                                  f"{','.join(TABLE1_CONFIGURATIONS)})")
    p.add_argument("--table2-runs", choices=("one", "separate"), default="one",
                   help="Table II from one run evaluated at each epoch (default) or separate runs")
    p.add_argument("--table4-pair", default="auto", help="Table IV's backbone / neck configuration "
                                                        "(default auto: the best of Table I)")
    p.add_argument("--epochs", type=int, default=None, help="Table I / III epochs instead of the preset's")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config change for every run (repeatable), e.g. --set engine.ema=false")
    p.add_argument("--notebooks", default=None, help="folder of the notebooks (default: the checkout's)")
    p.add_argument("--skip-training", action="store_true", help="only tables, figures and reports")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")


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
