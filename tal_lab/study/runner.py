"""Running a study plan: train through run_ablation.ipynb on every slot or on a cluster, analyse, export.

:func:`run_study` executes a :class:`tal_lab.study.plan.StudyPlan`. Each run is a
:class:`tal_lab.study.jobs.TrainingJob` (``notebooks/run_ablation.ipynb`` through papermill, in
its own kernel; through torchrun first with ``gpus_per_run`` > 1), placed on a device slot
(:mod:`tal_lab.study.placement`) and started by a launcher (:mod:`tal_lab.study.launchers`):
threads here (the default), submitit's local executor, or Slurm. Runs already finished in the
store are skipped and unfinished ones resume from their last checkpoint (the notebook trains
with ``resume=True``), so a killed study continues where it stopped; a run whose job is still
alive (another study's, or queued on Slurm) is waited for, not started twice. A run whose job
died mid-training (killed, not failed) is retried ``retries`` times from its checkpoint; a run
that failed is reported, never skipped silently. Table IV's runs join the queue once Table I's
are settled, on the best Table I configuration. Then the analysis notebooks run and the reports
are exported (:class:`tal_lab.study.jobs.AnalysisJob`); on Slurm that is a job depending on the
training array, and the submitting command returns at once (``tal-lab study --status`` follows).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from tal_lab.analysis.run_views import best_pair
from tal_lab.engine.api import finished_run_differences
from tal_lab.engine.progress import format_seconds
from tal_lab.runs import load_runs, run_status
from tal_lab.study.estimates import training_order
from tal_lab.study.job_state import analysis_key, read_records, update_record, write_record
from tal_lab.study.jobs import SETUP_PARAMETERS, AnalysisJob, TrainingJob, print_line, run_failure
from tal_lab.study.launchers import (LAUNCHERS, Handle, LocalLauncher, SlurmLauncher, SlurmOptions, ThreadsLauncher,
                                     adopted_handle, live_state)
from tal_lab.study.params import ablation_setup, base_config, project_root, resolve_path
from tal_lab.study.placement import CPU, DeviceSlot, device_slots, parse_devices
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, TABLE4_HEADS, RunSpec, StudyPlan, table4_specs

__all__ = ["StudyOutcome", "LaunchOptions", "table4_configuration", "add_table4_runs", "notebooks_dir", "run_study",
           "study_slots", "status_line"]

# The record key of Slurm's continuation job (Table IV after Table I, then the analysis).
CONTINUE_KEY = "continue"


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


def add_table4_runs(plan: StudyPlan, output_root: Path) -> list[RunSpec]:
    """Choose Table IV's configuration (:func:`table4_configuration`), record it in the plan
    and add its runs; returns the runs that are new (the actionformer head is a Table I run)."""
    pair = table4_configuration(plan, output_root)
    plan.table4_pair = pair  # the tables notebook and the report show this choice
    known = {s.key: i for i, s in enumerate(plan.runs)}
    added = []
    for seed in plan.seeds_for("IV"):
        for spec in table4_specs(plan, pair, seed):
            if spec.key in known:
                plan.runs[known[spec.key]] = plan.runs[known[spec.key]].merged(spec)
            else:
                plan.runs.append(spec)
                added.append(spec)
    return added


def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout tal_lab runs from (the study needs a checkout, not a wheel)."""
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    if not (folder / "run_ablation.ipynb").is_file():
        root = project_root()
        if root is not None and (root / "notebooks" / "run_ablation.ipynb").is_file():
            return root / "notebooks"
        raise FileNotFoundError(f"notebooks/run_ablation.ipynb not found beside the package ({folder}); run the "
                                f"study from a clone of tal_lab (pip install -e .) or pass --notebooks DIR")
    return folder


@dataclass
class StudyOutcome:
    """What a study did: run names per outcome, the notebooks executed, the index page, and on
    Slurm the jobs submitted (run name or record key -> job id)."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notebooks: list[Path] = field(default_factory=list)
    index: Path | None = None
    submitted: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class LaunchOptions:
    """Where and how the runs train (``tal-lab study`` options of the same names).

    Attributes:
        launcher: 'threads' (default), 'local' (submitit's local executor) or 'slurm'.
        devices: 'auto', 'cpu' or 'cuda:0,cuda:1,...' (threads / local; Slurm gives each job its GPUs).
        runs_per_device: runs sharing one GPU group (default 1); on the CPU, the runs at once.
        gpus_per_run: processes per run (torchrun); GPUs per run on GPUs.
        jobs: runs at once (default: every slot; on the CPU min(2, cores)).
        retries: new attempts for a run whose job died mid-training (it resumes).
        slurm: sbatch settings; ``slurm.time`` is also the local jobs' time limit.
    """

    launcher: str = "threads"
    devices: str = "auto"
    runs_per_device: int | None = None
    gpus_per_run: int = 1
    jobs: int | None = None
    retries: int = 1
    slurm: SlurmOptions = SlurmOptions()

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher {self.launcher!r} is not one of {' | '.join(LAUNCHERS)}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {self.retries!r}")

    @property
    def slurm_gpus(self) -> int:
        """GPUs of each Slurm training job."""
        return self.slurm.gpus_per_job if self.slurm.gpus_per_job is not None else self.gpus_per_run


def study_slots(options: LaunchOptions, gpu_count: int | None = None, cpu_cores: int | None = None) -> list[DeviceSlot]:
    """The slots a study fills (:func:`tal_lab.study.placement.device_slots`); on Slurm, the
    one shape every job has (its GPUs as the job sees them, its CPUs split between ranks)."""
    cores = cpu_cores if cpu_cores is not None else (os.cpu_count() or 1)
    if options.launcher == "slurm":
        gpus = options.slurm_gpus
        devices = tuple(f"cuda:{i}" for i in range(gpus)) or (CPU,)
        per_job = options.slurm.cpus_per_job or 0
        return [DeviceSlot(0, devices, options.gpus_per_run, max(1, per_job // options.gpus_per_run) if per_job else 0)]
    gpus = gpu_count if gpu_count is not None else torch.cuda.device_count()
    devices = parse_devices(options.devices, gpus)
    return device_slots(devices, cores, options.gpus_per_run, options.runs_per_device, options.jobs)


@dataclass
class _Context:
    plan: StudyPlan
    output_root: Path
    reports_dir: Path
    notebooks: Path
    cwd: Path
    overrides: tuple[str, ...]
    options: LaunchOptions
    log: Callable[[str], None]

    @property
    def work_dir(self) -> Path:
        return self.reports_dir / "_work"

    def run_parameters(self, spec: RunSpec, slot: DeviceSlot) -> dict[str, Any]:
        name = spec.run_name(self.plan.data_tag)
        return {"backbone": spec.backbone, "neck": spec.neck, "head": spec.head, "epochs": spec.epochs,
                "loss_weight": float(spec.loss_weight), "seed": spec.seed, "dataset": self.plan.dataset,
                "data_root": self.plan.data_root, "config_file": self.plan.config_file, "preset": self.plan.preset,
                "device": slot.notebook_device, "output_root": str(self.output_root), "run_name": name,
                "eval_epochs": list(spec.eval_epochs), "overrides": list(self.overrides),
                "num_threads": slot.threads, "output_dir": str(self.reports_dir / "runs" / name)}

    def check_finished_runs(self, specs: Sequence[RunSpec], slot: DeviceSlot) -> None:
        """Refuse to reuse a finished run of the store that this study would train otherwise
        (another ``--set``, such as ``engine.amp=bf16``, or another base config): skipping it
        would present its numbers as this study's.

        Raises:
            ValueError: naming each such run, the settings that differ (stored -> this study's)
                and what to do.
        """
        mismatched = []
        for spec in specs:
            name = spec.run_name(self.plan.data_tag)
            if run_status(self.output_root / name) != "finished":
                continue
            parameters = self.run_parameters(spec, slot)
            setup = ablation_setup(**{k: v for k, v in parameters.items() if k in SETUP_PARAMETERS})
            differences = finished_run_differences(self.output_root / name, setup.cfg)
            if differences:
                mismatched.append(f"{name}: " + "; ".join(differences[:6]))
        if mismatched:
            raise ValueError(
                f"{len(mismatched)} finished run(s) in {self.output_root} were trained with another config than this "
                "study's, so their results cannot stand for it (stored -> this study's): " + " | ".join(mismatched)
                + ". Give this study its own --output-root and --reports, or remove those run folders to retrain "
                "them")

    def training_job(self, spec: RunSpec, slot: DeviceSlot) -> TrainingJob:
        name = spec.run_name(self.plan.data_tag)
        environment = slot.environment()
        if self.options.launcher == "slurm":  # Slurm sets CUDA_VISIBLE_DEVICES; threads only when CPUs are known
            environment = {k: v for k, v in environment.items() if k != "CUDA_VISIBLE_DEVICES" and slot.threads}
        return TrainingJob(run_name=name, notebook=self.notebooks / "run_ablation.ipynb",
                           output=self.work_dir / "runs" / f"{name}.ipynb", parameters=self.run_parameters(spec, slot),
                           cwd=self.cwd, environment=environment, ranks=slot.ranks)

    def analysis_job(self, slots: Sequence[DeviceSlot], failures: dict[str, str]) -> AnalysisJob:
        # Only the threads launcher analyses in this process, where slot 0's device is visible.
        device = slots[0].notebook_device if self.options.launcher == "threads" else CPU
        return AnalysisJob(plan=self.plan, output_root=self.output_root, reports_dir=self.reports_dir,
                           notebooks=self.notebooks, cwd=self.cwd, device=device, num_threads=slots[0].threads,
                           jobs=max(1, min(2, len(slots))), failures=dict(failures))


def status_line(done: int, running: int, failed: int, queued: int, run_seconds: Sequence[float], jobs: int) -> str:
    """The study's progress in one line, with the time left estimated from the runs trained so
    far (each running run counted as half done; no estimate before the first run ends)."""
    line = f"study: {done} done, {running} running, {failed} failed, {queued} queued"
    if run_seconds and (queued or running):
        left = float(np.mean(run_seconds)) * (queued + 0.5 * running) / max(1, min(jobs, queued + running))
        line += f"; about {format_seconds(left)} of training left"
    return line


class _TrainingLoop:
    """Fill the free slots in plan order, settle the jobs that end, add Table IV when it can."""

    def __init__(self, ctx: _Context, launcher: ThreadsLauncher | LocalLauncher, slots: Sequence[DeviceSlot],
                 outcome: StudyOutcome) -> None:
        plan = ctx.plan
        self.ctx, self.launcher, self.outcome, self.slots = ctx, launcher, outcome, list(slots)
        self.device = slots[0].notebook_device if slots else CPU
        # (run, attempt), longest first within Table I, then the rest (training_order)
        self.pending: list[tuple[RunSpec, int]] = [(spec, 1) for spec in training_order(plan.runs, plan.data_tag,
                                                                                          self.device)]
        self.free = list(slots)
        self.running: dict[Handle, tuple[RunSpec, DeviceSlot | None, int, float]] = {}
        self.settled: set[tuple] = set()
        self.run_seconds: list[float] = []
        self.table4_waiting = "IV" in plan.tables and plan.table4_pair == "auto"
        self.table1_keys = {s.key for s in plan.runs if any(u.startswith("I:") for u in s.uses)}
        self.table4_runs = len(TABLE4_HEADS) * len(plan.seeds_for("IV"))  # planned once Table I is settled
        self.total = len(plan.runs) + (self.table4_runs if self.table4_waiting else 0)
        self.count = 0

    def run(self) -> None:
        while self.pending or self.running:
            self._fill()
            if self.running:
                for handle in self.launcher.wait(list(self.running)):
                    self._settle(handle)
            if self.table4_waiting and self.table1_keys <= self.settled:
                self.table4_waiting = False
                added = add_table4_runs(self.ctx.plan, self.ctx.output_root)
                self.ctx.check_finished_runs(added, self.slots[0])
                self.total -= self.table4_runs - len(added)
                attempts = {spec.key: attempt for spec, attempt in self.pending}
                specs = training_order([spec for spec, _ in self.pending] + added, self.ctx.plan.data_tag, self.device)
                self.pending = [(spec, attempts.get(spec.key, 1)) for spec in specs]
                self.ctx.log(f"Table IV: heads on configuration {self.ctx.plan.table4_pair} (best mean average mAP "
                             f"of Table I)")

    def _fill(self) -> None:
        ctx = self.ctx
        records = read_records(ctx.output_root)
        while self.pending and self.free:
            spec, attempt = self.pending.pop(0)
            name = spec.run_name(ctx.plan.data_tag)
            self.count += attempt == 1
            if run_status(ctx.output_root / name) == "finished":
                ctx.log(f"[{self.count}/{self.total}] {name}: finished earlier, skipped")
                self.outcome.skipped.append(name)
                self.settled.add(spec.key)
                continue
            elsewhere = adopted_handle(records[name]) if name in records else None
            if elsewhere is not None:  # another study's job holds it: wait, never train it twice
                ctx.log(f"[{self.count}/{self.total}] {name}: job {elsewhere.record.job_id} "
                        f"({elsewhere.record.launcher}) is training it; waiting for it")
                self.running[elsewhere] = (spec, None, attempt, time.perf_counter())
                continue
            slot = self.free.pop(0)
            handle = self.launcher.start(ctx.training_job(spec, slot), slot, attempt)
            write_record(ctx.output_root, name, handle.record)
            head = f"[{self.count}/{self.total}] {name}: training" if attempt == 1 else \
                f"  {name}: training again (attempt {attempt})"
            ctx.log(f"{head} on {slot.describe()} ({'; '.join(spec.uses)})")
            self.running[handle] = (spec, slot, attempt, time.perf_counter())

    def _settle(self, handle: Handle) -> None:
        ctx, outcome = self.ctx, self.outcome
        spec, slot, attempt, started = self.running.pop(handle)
        if slot is not None:
            self.free = sorted([*self.free, slot], key=lambda s: s.index)
        name = spec.run_name(ctx.plan.data_tag)
        seconds = time.perf_counter() - started
        failure = handle.failure()
        status = run_status(ctx.output_root / name)
        if slot is not None:
            update_record(ctx.output_root, name, state="finished" if failure is None else "failed",
                          error=failure or "")
            outcome.notebooks.append(ctx.work_dir / "runs" / f"{name}.ipynb")
        if failure is None and status == "finished":
            outcome.trained.append(name)
            self.run_seconds.append(seconds)
            ctx.log(f"  {name}: done in {seconds / 60:.1f} min")
        elif status == "running" and attempt <= ctx.options.retries:
            # The job died mid-training (killed, not an error of the run): again, from the checkpoint.
            ctx.log(f"  {name}: stopped after {seconds / 60:.1f} min ({failure or 'its job ended'}); "
                    f"retrying from its last checkpoint")
            self.pending.insert(0, (spec, attempt + 1))
            return
        else:
            outcome.failed[name] = run_failure(ctx.output_root / name) or failure or f"run status {status}"
            ctx.log(f"  {name}: FAILED after {seconds / 60:.1f} min: {outcome.failed[name]}")
        self.settled.add(spec.key)
        queued = len(self.pending) + (self.table4_runs if self.table4_waiting else 0)
        ctx.log(status_line(len(outcome.trained) + len(outcome.skipped), len(self.running), len(outcome.failed),
                            queued, self.run_seconds, len(self.slots)))


def _submit_to_slurm(ctx: _Context, slots: Sequence[DeviceSlot], outcome: StudyOutcome,
                     specs: Sequence[RunSpec]) -> None:
    """Submit ``specs`` (those not finished and not already queued or running) as one job array,
    then the job that follows them: the continuation (Table IV once Table I is done) or the analysis."""
    launcher = SlurmLauncher(ctx.output_root, ctx.options.slurm)
    records = read_records(ctx.output_root)
    in_flight, todo = [], []
    for spec in specs:
        name = spec.run_name(ctx.plan.data_tag)
        record = records.get(name)
        if run_status(ctx.output_root / name) == "finished":
            outcome.skipped.append(name)
        elif record is not None and live_state(record) in ("queued", "running"):
            ctx.log(f"{name}: already in job {record.job_id}, not submitted again")
            in_flight.append(record.job_id)
        else:
            todo.append((spec, record.attempt + 1 if record else 1))
    handles = launcher.submit_array([ctx.training_job(spec, slots[0]) for spec, _ in todo], ctx.options.slurm_gpus,
                                    [attempt for _, attempt in todo])
    for (spec, _), handle in zip(todo, handles):
        name = spec.run_name(ctx.plan.data_tag)
        write_record(ctx.output_root, name, handle.record)
        outcome.submitted[name] = handle.record.job_id
        ctx.log(f"{name}: slurm job {handle.record.job_id}")
    after = in_flight + [h.record.job_id for h in handles]
    if "IV" in ctx.plan.tables and ctx.plan.table4_pair == "auto":
        follow: Callable[[], Any] = _ContinueOnSlurm(dataclasses.replace(ctx, log=print_line))
        key, what = CONTINUE_KEY, "continuation (Table IV once Table I is done, then the analysis)"
    else:
        follow, key, what = ctx.analysis_job(slots, outcome.failed), analysis_key(ctx.reports_dir), "analysis"
    handle = launcher.submit_after(follow, after, gpus=0, where=f"slurm, CPU, after {len(after)} job(s)")
    write_record(ctx.output_root, key, handle.record)
    outcome.submitted[key] = handle.record.job_id
    ctx.log(f"{what}: slurm job {handle.record.job_id}; follow the study with tal-lab study --status (same options)")


@dataclass
class _ContinueOnSlurm:
    """Slurm's job after Table I's: choose Table IV's configuration from the store, submit its
    runs, then the analysis after them."""

    ctx: _Context  # its log is print_line: the job is pickled for Slurm

    def __call__(self) -> dict[str, str]:
        plan = dataclasses.replace(self.ctx.plan, runs=list(self.ctx.plan.runs))
        ctx = dataclasses.replace(self.ctx, plan=plan)
        added = add_table4_runs(plan, ctx.output_root)
        ctx.log(f"Table IV: heads on configuration {plan.table4_pair} (best mean average mAP of Table I)")
        slots = study_slots(ctx.options)
        ctx.check_finished_runs(added, slots[0])
        outcome = StudyOutcome()
        _submit_to_slurm(ctx, slots, outcome, added)
        return outcome.submitted


def run_study(
    plan: StudyPlan,
    output_root: str | Path = "runs",
    reports_dir: str | Path = "reports",
    jobs: int | None = None,
    devices: str = "auto",
    overrides: Sequence[str] = (),
    notebooks: str | Path | None = None,
    train: bool = True,
    log: Callable[[str], None] | None = None,
    *,
    runs_per_device: int | None = None,
    gpus_per_run: int = 1,
    launcher: str = "threads",
    slurm: SlurmOptions | None = None,
    retries: int = 1,
) -> StudyOutcome:
    """Train every run of ``plan`` (skipping finished ones), run the analysis notebooks and
    export the reports; returns what happened (failed runs are listed, not raised). On Slurm it
    returns once the jobs are submitted (``outcome.submitted``).

    Args:
        jobs: runs trained at once (default: one per GPU slot; on the CPU min(2, cores), each
            with cores / jobs torch threads).
        devices: 'auto' (every visible GPU, else the CPU), 'cpu' or 'cuda:0,cuda:1,...'.
        overrides: ``key=value`` config changes given to every run.
        train: False skips training (tables and figures from what the store holds), here.
        runs_per_device, gpus_per_run, launcher, slurm, retries: see :class:`LaunchOptions`.
    """
    log = log or print_line
    options = LaunchOptions(launcher=launcher, devices=devices, runs_per_device=runs_per_device,
                            gpus_per_run=gpus_per_run, jobs=jobs, retries=retries, slurm=slurm or SlurmOptions())
    slots = study_slots(options)
    ctx = _Context(plan=plan, output_root=resolve_path(output_root), reports_dir=resolve_path(reports_dir),
                   notebooks=Path(notebooks).resolve() if notebooks else notebooks_dir(),
                   cwd=project_root() or Path.cwd(), overrides=tuple(overrides), options=options, log=log)
    ctx.output_root.mkdir(parents=True, exist_ok=True)
    outcome = StudyOutcome()
    start = time.perf_counter()
    if train:
        log(plan.describe())
        # Data first, once: parallel notebooks then find it (the synthetic benchmark is generated here).
        base_config(plan.dataset, plan.data_root, plan.preset, plan.config_file)
        ctx.check_finished_runs(plan.runs, slots[0])
        if launcher == "slurm":
            _submit_to_slurm(ctx, slots, outcome, plan.runs)
            return outcome
        runner = ThreadsLauncher(len(slots)) if launcher == "threads" else LocalLauncher(ctx.output_root,
                                                                                          options.slurm.time)
        try:
            _TrainingLoop(ctx, runner, slots, outcome).run()
        finally:
            runner.close()
        log(f"training: {len(outcome.trained)} trained, {len(outcome.skipped)} skipped, "
            f"{len(outcome.failed)} failed in {(time.perf_counter() - start) / 60:.1f} min")
    # After training the analysis goes through the same launcher; analyse-only runs it here.
    analyse = runner.analyse if train else ThreadsLauncher.analyse_here
    result = analyse(ctx.analysis_job(slots, outcome.failed), log)
    outcome.notebooks += result.notebooks
    outcome.failed = result.failed
    outcome.index = result.index
    log(f"reports: {outcome.index} ({(time.perf_counter() - start) / 60:.1f} min in all)")
    return outcome
