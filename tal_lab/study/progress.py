"""The study as text: the plan with where each run goes and how long it takes (``--dry-run``),
and where every run stands (``--status``).

``--status`` reads the run store (:func:`tal_lab.runs.run_status`, the epochs a run has done)
and the launcher's records (:mod:`tal_lab.study.job_state`, asking the launcher about jobs not
settled yet). Each planned run is **done** (finished in the store), **running** (its job is
alive), **queued** (waiting in the cluster's queue, not started yet, or stopped before its end
with no job: the next ``tal-lab study`` resumes it) or **failed** (the run failed, or its job
ended without finishing it), a failed one with its last error lines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tal_lab.core.atomic_io import read_jsonl
from tal_lab.engine.progress import format_seconds
from tal_lab.runs import RUN_FILES, run_status
from tal_lab.study.estimates import estimate_run, training_order
from tal_lab.study.job_state import JobRecord, analysis_key, read_records
from tal_lab.study.jobs import notebook_traceback, run_failure
from tal_lab.study.launchers import job_log_tail, live_state, watch_jobs
from tal_lab.study.placement import place_runs
from tal_lab.study.plan import StudyPlan
from tal_lab.study.runner import CONTINUE_KEY, LaunchOptions, add_table4_runs, study_slots

__all__ = ["PROGRESS_STATES", "RunProgress", "dry_run_text", "study_progress", "status_text"]

PROGRESS_STATES: tuple[str, ...] = ("done", "running", "queued", "failed")
# Error lines --status prints for a failed run.
ERROR_LINES = 6


def dry_run_text(plan: StudyPlan, options: LaunchOptions, gpu_count: int | None = None,
                 cpu_cores: int | None = None) -> str:
    """The plan, then one line per run: where it trains and its estimated time."""
    slots = study_slots(options, gpu_count, cpu_cores)
    device = slots[0].notebook_device
    lines = [plan.describe(), ""]
    runs = list(plan.runs)
    if options.launcher == "slurm":
        gpus = options.slurm_gpus
        lines.append(f"launcher slurm: one job array of {len(plan.runs)} task(s), {gpus or 'no'} GPU(s) and "
                     f"{options.slurm.cpus_per_job or 'the default'} CPU(s) each, time limit {options.slurm.time}; "
                     f"the analysis as a job after them")
        where = [(spec.run_name(plan.data_tag), f"array task {i}") for i, spec in enumerate(plan.runs)]
    else:
        lines.append(f"launcher {options.launcher}: {len(slots)} slot(s): "
                     + ", ".join(slot.describe() for slot in slots) + "; runs listed in the order they start")
        runs = training_order(plan.runs, plan.data_tag, device)
        where = [(name, slot.describe()) for name, slot in place_runs([s.run_name(plan.data_tag) for s in runs], slots)]
    total, unknown = 0.0, 0
    width = max((len(name) for name, _ in where), default=0)
    for spec, (name, place) in zip(runs, where):
        estimate = estimate_run(spec, plan.data_tag, device)
        if estimate.seconds is None:
            unknown += 1
            text = f"no estimate ({estimate.basis})"
        else:
            total += estimate.seconds
            text = f"~{format_seconds(estimate.seconds)}  [{estimate.basis}]"
        lines.append(f"  {name:<{width}}  {place:<28} {text}")
    if unknown == len(plan.runs):
        lines.append("training: no estimate (no measured figure applies to these runs)")
        return "\n".join(lines)
    summary = f"training: about {format_seconds(total)} of run time in all"
    if options.launcher != "slurm":  # slots share the runs; a cluster's parallelism is its own
        summary += f", about {format_seconds(total / len(slots))} on {len(slots)} slot(s)"
    lines.append(summary + (f" ({unknown} run(s) without an estimate)" if unknown else ""))
    return "\n".join(lines)


@dataclass
class RunProgress:
    """Where one planned run stands.

    Attributes:
        state: one of :data:`PROGRESS_STATES`.
        detail: epochs done, the job and its state, or the average mAP of a done run.
        error_lines: the last error lines of a failed run.
    """

    name: str
    state: str
    detail: str
    error_lines: list[str] = field(default_factory=list)


def _epochs_line(run_dir: Path) -> str:
    epochs = read_jsonl(run_dir / RUN_FILES["epochs"])
    return f"epoch {len(epochs)} done" if epochs else "no epoch done yet"


def _error_lines(run_dir: Path, record: JobRecord | None, notebook: Path) -> list[str]:
    lines = []
    failure = run_failure(run_dir)
    if failure:
        lines.append(failure)
    lines += notebook_traceback(notebook, ERROR_LINES)
    if record is not None:
        if record.error and record.error not in lines:
            lines.append(record.error)
        if not lines:
            lines += job_log_tail(record, ERROR_LINES)
    return lines[-ERROR_LINES:] or ["no error recorded; the job ended before the run finished"]


def _run_progress(name: str, run_dir: Path, record: JobRecord | None, notebook: Path) -> RunProgress:
    status = run_status(run_dir)
    job = f"{record.launcher} job {record.job_id} ({record.where}{f', on {record.host}' if record.host else ''})" \
        if record else ""
    if status == "finished":
        return RunProgress(name, "done", job or "finished")
    live = live_state(record) if record else "none"
    if live == "running":
        return RunProgress(name, "running", f"{_epochs_line(run_dir)}; {job}")
    if live in ("queued", "unknown"):
        return RunProgress(name, "queued", f"{job}, {'pending' if live == 'queued' else 'state unknown'}")
    if status == "failed" or (record is not None and (record.launcher == "slurm" or record.state == "failed")):
        # failed, or its job ended without finishing it
        return RunProgress(name, "failed", job, _error_lines(run_dir, record, notebook))
    if status == "missing":
        return RunProgress(name, "queued", "not started")
    # stopped before its end with no job alive (the study was killed): it resumes
    return RunProgress(name, "queued", f"stopped ({_epochs_line(run_dir)}); the next tal-lab study resumes it")


def _planned(plan: StudyPlan, root: Path) -> StudyPlan:
    """A copy of ``plan`` with Table IV's runs once every Table I run is finished in the store."""
    plan = dataclasses.replace(plan, runs=list(plan.runs))
    table1 = [s.run_name(plan.data_tag) for s in plan.runs if any(u.startswith("I:") for u in s.uses)]
    if "IV" in plan.tables and plan.table4_pair == "auto" and all(
            run_status(root / name) == "finished" for name in table1):
        add_table4_runs(plan, root)
    return plan


def study_progress(plan: StudyPlan, output_root: str | Path, reports_dir: str | Path) -> list[RunProgress]:
    """One :class:`RunProgress` per planned run (Table IV's too once Table I is done)."""
    root, reports = Path(output_root), Path(reports_dir)
    records = read_records(root)
    watch_jobs(list(records.values()))
    return [_run_progress(name, root / name, records.get(name), reports / "_work" / "runs" / f"{name}.ipynb")
            for name in _planned(plan, root).run_names()]


def status_text(plan: StudyPlan, output_root: str | Path, reports_dir: str | Path) -> tuple[str, bool]:
    """``--status``'s report, and whether no run failed."""
    progress = study_progress(plan, output_root, reports_dir)
    counts = {state: sum(p.state == state for p in progress) for state in PROGRESS_STATES}
    lines = [f"study status ({plan.data_tag}, tables {', '.join(plan.tables)}, run store {output_root}): "
             + ", ".join(f"{counts[s]} {s}" for s in PROGRESS_STATES)]
    width = max((len(p.name) for p in progress), default=0)
    for p in progress:
        lines.append(f"  {p.state:<8} {p.name:<{width}}  {p.detail}")
        lines += [f"           | {line}" for line in p.error_lines]
    if "IV" in plan.tables and _planned(plan, Path(output_root)).table4_pair == "auto":
        lines.append(f"  Table IV: its runs are planned once Table I ({', '.join(plan.configurations)}) is done")
    records = read_records(output_root)
    for key, what in ((CONTINUE_KEY, "continuation"), (analysis_key(reports_dir), "analysis")):
        if key in records:
            record = records[key]
            lines.append(f"  {what}: {record.launcher} job {record.job_id}, {live_state(record)}")
    index = Path(reports_dir) / "index.html"
    lines.append(f"  reports: {index}" if index.is_file() else "  reports: not written yet")
    return "\n".join(lines), counts["failed"] == 0
