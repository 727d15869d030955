"""How the study's jobs start: in threads here, through submitit's local executor, or on Slurm.

* ``threads`` (the default, as before): a thread per slot in the study's process; a CPU run's
  kernel starts from the thread, a GPU run gets a spawned process of its own first, so that its
  kernel inherits the slot's ``CUDA_VISIBLE_DEVICES``.
* ``local``: each run is a job of submitit's ``LocalExecutor`` (a process per job, the slot's
  GPUs made visible by submitit), at most one per slot at a time; what CI tests of the cluster
  path.
* ``slurm``: every run is a task of one Slurm job array submitted with submitit's
  ``SlurmExecutor`` (partition, account, time, GPUs and CPUs per job, constraint, extra sbatch
  options); the analysis is one more job that depends on the array (``afterany``). Slurm places
  the jobs; on preemption or time-out submitit checkpoints the job and requeues it
  (:meth:`tal_lab.study.jobs.TrainingJob.checkpoint`), and the run resumes from its checkpoint.

Nothing here schedules: slots are filled in plan order as they free, and the cluster does the
rest. :func:`live_state` asks a launcher where a recorded job stands (``--status``).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import submitit
from submitit.core.utils import FailedJobError, JobPaths, UncompletedJobError

from tal_lab.study.job_state import JobRecord, now, state_dir
from tal_lab.study.jobs import AnalysisJob, AnalysisOutcome, TrainingJob, notebook_failure
from tal_lab.study.placement import DeviceSlot

__all__ = ["LAUNCHERS", "SlurmOptions", "parse_minutes", "Handle", "ThreadsLauncher", "LocalLauncher",
           "SlurmLauncher", "adopted_handle", "live_state", "watch_jobs", "job_log_tail"]

LAUNCHERS: tuple[str, ...] = ("threads", "local", "slurm")
# submitit's job folders, one per job id, under the run store's _study/.
_SUBMITIT_FOLDER = "submitit/%j"
# A run longer than its job's time limit continues in a requeued job (from its checkpoint):
# this many requeues per run are allowed before submitit gives up.
MAX_REQUEUES = 10
# How often the local launcher looks at its jobs (seconds).
_POLL_SECONDS = 0.5
# Slurm's states grouped as --status shows them (sacct's names; submitit says UNKNOWN when it cannot tell).
_QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED"}
_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"}
# Process ids of threads / local jobs mean something on their own machine only.
_HOST = socket.gethostname()


def parse_minutes(text: str) -> int:
    """A Slurm time limit in minutes: 'M', 'M:S', 'H:M:S', 'D-H', 'D-H:M' or 'D-H:M:S'.

    Raises:
        ValueError: not one of those forms.
    """
    days, _, rest = text.strip().rpartition("-") if "-" in text else ("", "", text.strip())
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or (days and not days.isdigit()) or len(parts) > 3:
        raise ValueError(f"--time {text!r} is not a Slurm time (minutes, H:MM:SS or D-HH:MM:SS)")
    numbers = [int(p) for p in parts]
    if days:  # D-H, D-H:M, D-H:M:S
        h, m, s = (numbers + [0, 0])[:3]
        return int(days) * 1440 + h * 60 + m + (1 if s else 0)
    if len(numbers) == 3:
        return numbers[0] * 60 + numbers[1] + (1 if numbers[2] else 0)
    return numbers[0] + (1 if len(numbers) == 2 and numbers[1] else 0)


@dataclass(frozen=True)
class SlurmOptions:
    """sbatch settings of the study's Slurm jobs (``--partition``, ``--account``, ...).

    Attributes:
        time: the time limit of each job (Slurm's forms, e.g. '4:00:00'); a longer run is
            requeued from its checkpoint.
        gpus_per_job: GPUs of a training job (None: ``--gpus-per-run``; 0 on the CPU).
        cpus_per_job: CPUs of a job (None: the cluster's default).
        extra: more sbatch options as 'KEY=VALUE' (e.g. 'qos=high', 'mem=64G').
    """

    partition: str = ""
    account: str = ""
    time: str = "4:00:00"
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    constraint: str = ""
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_minutes(self.time)
        self.extra_parameters()
        for name in ("gpus_per_job", "cpus_per_job"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 0, got {value!r}")

    def extra_parameters(self) -> dict[str, str]:
        """``extra`` as sbatch option -> value.

        Raises:
            ValueError: an item that is not KEY=VALUE.
        """
        extra = {}
        for item in self.extra:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--sbatch-extra {item!r} is not KEY=VALUE (e.g. qos=high)")
            extra[key.strip()] = value.strip()
        return extra

    def sbatch_parameters(self, gpus: int) -> dict[str, Any]:
        """``SlurmExecutor.update_parameters`` keywords of a job with ``gpus`` GPUs."""
        params: dict[str, Any] = {"time": parse_minutes(self.time), "nodes": 1, "ntasks_per_node": 1,
                                  "job_name": "tal_lab-study", "additional_parameters": self.extra_parameters()}
        params.update({k: v for k, v in (("partition", self.partition), ("account", self.account),
                                         ("constraint", self.constraint)) if v})
        if gpus:
            params["gpus_per_node"] = gpus
        if self.cpus_per_job:
            params["cpus_per_task"] = self.cpus_per_job
        return params


class Handle:
    """A started job: its id and record, whether it is done, and its failure if it failed."""

    def __init__(self, record: JobRecord, done: Callable[[], bool], error: Callable[[], BaseException | None],
                 notebook: Path | None = None) -> None:
        self.record = record
        self._done, self._error, self._notebook = done, error, notebook

    def done(self) -> bool:
        return self._done()

    def failure(self) -> str | None:
        """None when the job succeeded; else the notebook's error, or the job's last error line."""
        err = self._error()
        if err is None:
            return None
        from_notebook = notebook_failure(self._notebook) if self._notebook else None
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        if not lines:
            return from_notebook or type(err).__name__
        # A job that left no result says so on its first line (its log follows); a job that
        # raised ends with the exception's line.
        return from_notebook or (lines[0] if _left_no_result(err) else lines[-1])


def _left_no_result(err: BaseException) -> bool:
    """submitit's error for a job that died without a result (FailedJobError: it raised)."""
    return isinstance(err, UncompletedJobError) and not isinstance(err, FailedJobError)


def _spawned(job: TrainingJob) -> str:
    """Run ``job`` in a fresh process (its environment then reaches its kernel only)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(job).result()


class ThreadsLauncher:
    """Training jobs in threads of this process, ``slots`` at a time."""

    name = "threads"

    def __init__(self, slots: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=slots)
        self._futures: dict[int, Future] = {}

    def start(self, job: TrainingJob, slot: DeviceSlot, attempt: int) -> Handle:
        future = self._pool.submit(_spawned, job) if slot.on_gpu else self._pool.submit(job.run)
        record = JobRecord(launcher=self.name, job_id=f"{os.getpid()}:{job.run_name}", where=slot.describe(),
                           attempt=attempt, submitted=now(), state="running", pid=os.getpid(), host=_HOST)
        return Handle(record, future.done, future.exception, job.output)

    def wait(self, handles: Sequence[Handle]) -> list[Handle]:
        _wait_any(handles)
        return [h for h in handles if h.done()]

    @staticmethod
    def analyse_here(job: AnalysisJob, log: Callable[[str], None]) -> AnalysisOutcome:
        """The analysis in this process (its notebooks in threads)."""
        return job(log)

    analyse = analyse_here

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _wait_any(handles: Sequence[Handle]) -> None:
    while handles and not any(h.done() for h in handles):
        time.sleep(_POLL_SECONDS)


def _submitit_handle(job: Any, launcher: str, where: str, attempt: int, notebook: Path | None) -> Handle:
    record = JobRecord(launcher=launcher, job_id=str(job.job_id), where=where, attempt=attempt, submitted=now(),
                       state="submitted" if launcher == "slurm" else "running", folder=str(job.paths.folder),
                       pid=int(job.job_id) if launcher == "local" else None, host=_HOST if launcher == "local" else "")
    return Handle(record, job.done, job.exception, notebook)


class LocalLauncher:
    """Training jobs through submitit's ``LocalExecutor``, one per free slot."""

    name = "local"

    def __init__(self, output_root: Path, time_limit: str) -> None:
        self._executor = submitit.LocalExecutor(folder=state_dir(output_root) / _SUBMITIT_FOLDER,
                                                max_num_timeout=MAX_REQUEUES)
        self._timeout_min = parse_minutes(time_limit)

    def _submit(self, fn: Callable[[], Any], gpu_ids: Sequence[int]) -> Any:
        self._executor.update_parameters(timeout_min=self._timeout_min, gpus_per_node=len(gpu_ids),
                                         visible_gpus=tuple(gpu_ids))
        return self._executor.submit(fn)

    def start(self, job: TrainingJob, slot: DeviceSlot, attempt: int) -> Handle:
        return _submitit_handle(self._submit(job, slot.gpu_ids), self.name, slot.describe(), attempt, job.output)

    def wait(self, handles: Sequence[Handle]) -> list[Handle]:
        _wait_any(handles)
        return [h for h in handles if h.done()]

    def analyse(self, job: AnalysisJob, log: Callable[[str], None]) -> AnalysisOutcome:
        submitted = self._submit(job, ())
        log(f"analysis: local job {submitted.job_id} (log {submitted.paths.stdout})")
        return submitted.result()

    def close(self) -> None:
        """Nothing to release: each local job is its own process, already waited for."""


class SlurmLauncher:
    """Training jobs as one Slurm job array, then one job that depends on them."""

    name = "slurm"

    def __init__(self, output_root: Path, options: SlurmOptions) -> None:
        self._folder = state_dir(output_root) / _SUBMITIT_FOLDER
        self.options = options
        self._executor(gpus=0)  # fails here, before anything is submitted, when this is no Slurm cluster

    def _executor(self, gpus: int, **more: Any) -> submitit.SlurmExecutor:
        """A fresh executor for each submission: update_parameters merges, and a GPU count must
        not leak from the training jobs into the analysis job."""
        try:
            executor = submitit.SlurmExecutor(folder=self._folder, max_num_timeout=MAX_REQUEUES)
        except RuntimeError as err:  # submitit's word for "no srun here"
            raise ValueError(f"--launcher slurm needs a Slurm cluster (submit from a login node): {err}") from err
        executor.update_parameters(**self.options.sbatch_parameters(gpus), **more)
        return executor

    def submit_array(self, jobs: Sequence[TrainingJob], gpus: int, attempts: Sequence[int]) -> list[Handle]:
        """All ``jobs`` as the tasks of one array (each with ``gpus`` GPUs)."""
        if not jobs:
            return []
        executor = self._executor(gpus)
        with executor.batch():
            submitted = [executor.submit(job) for job in jobs]
        where = f"slurm, {gpus} GPU(s)" if gpus else "slurm, CPU"
        return [_submitit_handle(s, self.name, where, a, j.output) for s, j, a in zip(submitted, jobs, attempts)]

    def submit_after(self, fn: Callable[[], Any], after: Sequence[str], gpus: int, where: str) -> Handle:
        """One job that starts when every job of ``after`` has ended, however it ended."""
        # An array's tasks are covered by the array's own id.
        ids = sorted({job_id.split("_")[0] for job_id in after})
        executor = self._executor(gpus, **({"dependency": "afterany:" + ":".join(ids)} if ids else {}))
        return _submitit_handle(executor.submit(fn), self.name, where, 1, None)

    def close(self) -> None:
        """Nothing to release: the jobs belong to Slurm now."""


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's: not ours, so not our job
        return False
    return True


def adopted_handle(record: JobRecord) -> Handle | None:
    """A handle on a recorded job that is still alive and not this process's own (a study killed
    and started again, or another one on the same store), or None. Waiting on it keeps a run from
    being trained twice at once."""
    if record.state in ("finished", "failed") or (record.pid == os.getpid() and record.host == _HOST):
        return None
    if record.launcher in ("threads", "local"):
        if record.host != _HOST:  # another machine's process: nothing to wait on from here (docs/scaling.md)
            return None
        pid = record.pid
        return Handle(record, lambda: not _process_alive(pid), lambda: None) if _process_alive(pid) else None
    if live_state(record) not in ("queued", "running"):
        return None
    return Handle(record, lambda: live_state(record) not in ("queued", "running"), lambda: None)


def live_state(record: JobRecord) -> str:
    """Where a recorded job stands now: 'queued', 'running', 'ended' or 'unknown'.

    threads / local: the process holding the job is alive (running) or not (ended); 'unknown' from
    another machine. slurm: what ``sacct`` says, through submitit ('unknown' where sacct cannot be
    asked or does not know).
    """
    if record.state in ("finished", "failed"):
        return "ended"
    if record.launcher in ("threads", "local"):
        if record.host != _HOST:
            return "unknown"
        return "running" if _process_alive(record.pid) else "ended"
    # submitit asks sacct (every job watched, in one call) and says UNKNOWN when it cannot.
    state = submitit.SlurmJob(folder=record.folder, job_id=record.job_id).state
    if state in _QUEUED:
        return "queued"
    if state in _RUNNING:
        return "running"
    return "unknown" if state in ("UNKNOWN", "READY") else "ended"


def watch_jobs(records: Sequence[JobRecord]) -> None:
    """Register the Slurm jobs among ``records`` with submitit's watcher, so that the next
    :func:`live_state` asks sacct about all of them at once (and afresh)."""
    for record in records:
        if record.launcher == "slurm":
            submitit.SlurmJob.watcher.register_job(record.job_id)


def job_log_tail(record: JobRecord, lines: int = 8) -> list[str]:
    """The last ``lines`` lines of the job's stderr log (submitit's), if there is one."""
    if not record.folder:
        return []
    path = JobPaths(record.folder, job_id=record.job_id, task_id=0).stderr
    if not path.is_file():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()][-lines:]
