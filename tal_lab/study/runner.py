"""Running a study plan: train through run_ablation.ipynb, analyse, export.

:func:`run_study` executes a :class:`tal_lab.study.plan.StudyPlan`: each run executes
``notebooks/run_ablation.ipynb`` with papermill in its own kernel, ``jobs`` at a time; runs
already finished in the store are skipped and unfinished ones resume from their last checkpoint
(the notebook trains with ``resume=True``), so a killed study continues where it stopped. A
failed run is reported, not raised. Table IV's runs join the queue once Table I's are settled,
on the best Table I configuration. Then the analysis notebooks run (also ``jobs`` at a time) and
:func:`tal_lab.study.reports.export_reports` writes the HTML pages and the index.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from tal_lab.analysis.run_views import best_pair
from tal_lab.config import load_config
from tal_lab.engine.progress import format_seconds
from tal_lab.runs import RUN_FILES, load_runs, run_status
from tal_lab.study.params import base_config, check_device, project_root, resolve_path
from tal_lab.study.reports import execute_notebook, export_reports, notebook_error
from tal_lab.study.plan import (ANALYSIS_NOTEBOOKS, TABLE1_CONFIGURATIONS, TABLE4_HEADS, RunSpec, StudyPlan,
                                table4_specs)

__all__ = ["StudyOutcome", "table4_configuration", "notebooks_dir", "run_study", "status_line"]


def table4_configuration(plan: StudyPlan, output_root: Path) -> str:
    """The Table I configuration Table IV's heads are trained on: the (backbone, neck) pair that
    :func:`tal_lab.analysis.run_views.best_pair` picks from the plan's finished Table I runs in
    the store (so its tie-break rule), E (the paper's best) when none has finished."""
    runs = load_runs(output_root)
    finished = runs[runs["status"] == "finished"].set_index("name")["avg_mAP"]
    rows = [{"backbone": TABLE1_CONFIGURATIONS[use[2:]][0], "neck": TABLE1_CONFIGURATIONS[use[2:]][1],
             "avg_mAP": finished[spec.run_name(plan.data_tag)]}
            for spec in plan.runs for use in spec.uses
            if use.startswith("I:") and spec.run_name(plan.data_tag) in finished.index]
    keys = {pair: key for key, pair in TABLE1_CONFIGURATIONS.items()}
    return keys[best_pair(pd.DataFrame(rows, columns=["backbone", "neck", "avg_mAP"]))]


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
    have = set(load_config(run_dir / RUN_FILES["config"])["engine"]["eval_epochs"])
    missing = sorted(set(spec.eval_epochs) - have)
    if missing:
        ctx.log(f"  note: {run_dir.name} was trained without evaluations at epochs {missing}; Table II will lack "
                f"them (delete the run folder to train it again)")


def status_line(done: int, running: int, failed: int, queued: int, run_seconds: Sequence[float], jobs: int) -> str:
    """The study's progress in one line, with the time left estimated from the runs trained so
    far (each running run counted as half done; no estimate before the first run ends)."""
    line = f"study: {done} done, {running} running, {failed} failed, {queued} queued"
    if run_seconds and (queued or running):
        left = float(np.mean(run_seconds)) * (queued + 0.5 * running) / max(1, min(jobs, queued + running))
        line += f"; about {format_seconds(left)} of training left"
    return line


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
    run_seconds: list[float] = []
    table4_runs = len(TABLE4_HEADS) * len(plan.seeds)  # planned once Table I is settled
    total = len(plan.runs) + (table4_runs if table4_waiting else 0)
    count = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                count += 1
                name = spec.run_name(plan.data_tag)
                run_dir = ctx.output_root / name
                if run_status(run_dir) == "finished":
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
                        run_seconds.append(seconds)
                        ctx.log(f"  {name}: done in {seconds / 60:.1f} min")
                    else:
                        outcome.failed[name] = notebook_error(err)
                        ctx.log(f"  {name}: FAILED after {seconds / 60:.1f} min: {outcome.failed[name]}")
                    queued = len(pending) + (table4_runs if table4_waiting else 0)
                    ctx.log(status_line(len(outcome.trained) + len(outcome.skipped), len(running),
                                        len(outcome.failed), queued, run_seconds, jobs))
            if table4_waiting and table1_keys <= settled:
                table4_waiting = False
                pair = table4_configuration(plan, ctx.output_root)
                plan.table4_pair = pair  # the tables notebook and the report show this choice
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
              if use.startswith("I:") and spec.seed == plan.seeds[0]
              and run_status(ctx.output_root / spec.run_name(plan.data_tag)) == "finished"}  # failed runs left out
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
