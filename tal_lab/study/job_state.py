"""The launcher's side of a study: which job last took each run, in one small file of the run store.

``{output_root}/_study/jobs.json`` maps a run name (or ``analysis:<reports folder>``, or
``continue``) to a :class:`JobRecord`: the launcher, its job id, where the job runs, the attempt,
and the last state the study saw. The run folders say how far a run got (``tal_lab.runs``); this
file says which job to ask about the rest (``tal-lab study --status``), and keeps a study that
is started again from submitting a run whose job is still queued or running. The file is
rewritten whole through :mod:`tal_lab.core.atomic_io`, so a killed study leaves the old or the
new version; one study process (or the cluster's continuation job) writes it at a time.
``_study/`` holds no ``run.json``, so the run store's readers pass it by.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from tal_lab.core.atomic_io import write_json_atomic

__all__ = ["STATE_DIR", "RECORD_STATES", "JobRecord", "state_dir", "read_records", "write_record", "update_record",
           "now", "analysis_key"]

STATE_DIR = "_study"
_STATE_FILE = "jobs.json"
# The orchestrator's last word on a job.
RECORD_STATES = ("submitted", "running", "finished", "failed")


@dataclass(frozen=True)
class JobRecord:
    """The job that last took a run.

    Attributes:
        launcher: 'threads', 'local' or 'slurm'.
        job_id: the launcher's id ('<study pid>:<run>' for threads, the controller's pid for
            submitit's local executor, the Slurm job id, e.g. '4242_3' in an array).
        where: the slot or the job's resources, as the dry run prints them.
        attempt: 1 for the first job of the run in this study, 2 for its retry, ...
        submitted: when the job was handed to the launcher (ISO 8601, UTC).
        state: one of 'submitted', 'running', 'finished', 'failed' (what the study saw last).
        folder: submitit's folder of the job's logs ('' for threads).
        pid: the process holding the job (threads: the study; local: submitit's controller).
        host: the machine ``pid`` runs on (a shared run store is seen from several).
        error: the failure's one-line message, if any.
    """

    launcher: str
    job_id: str
    where: str
    attempt: int
    submitted: str
    state: str
    folder: str = ""
    pid: int | None = None
    host: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        if self.state not in RECORD_STATES:
            raise ValueError(f"job record state {self.state!r} is not one of {RECORD_STATES}")


def now() -> str:
    """The current time as the records store it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def analysis_key(reports_dir: str | Path) -> str:
    """The record key of the analysis job writing ``reports_dir``."""
    return f"analysis:{Path(reports_dir).resolve()}"


def state_dir(output_root: str | Path) -> Path:
    """``{output_root}/_study``: the job records and submitit's job folders."""
    return Path(output_root) / STATE_DIR


def read_records(output_root: str | Path) -> dict[str, JobRecord]:
    """Every record of the run store (empty when no study launched jobs there).

    Raises:
        ValueError: the file is not valid JSON or holds an unknown field (names the file).
    """
    path = state_dir(output_root) / _STATE_FILE
    if not path.is_file():
        return {}
    try:
        raw: dict[str, dict[str, Any]] = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    known = {f.name for f in fields(JobRecord)}
    records = {}
    for key, values in raw.items():
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{path}: record {key!r} has unknown field(s) {sorted(unknown)}")
        records[key] = JobRecord(**values)
    return records


def write_record(output_root: str | Path, key: str, record: JobRecord) -> None:
    """Set the record of ``key`` (the file is rewritten atomically)."""
    records = read_records(output_root)
    records[key] = record
    write_json_atomic(state_dir(output_root) / _STATE_FILE, {k: asdict(r) for k, r in sorted(records.items())})


def update_record(output_root: str | Path, key: str, **changes: Any) -> JobRecord:
    """Change fields of the record of ``key`` (e.g. ``state='finished'``); returns the new record.

    Raises:
        KeyError: no record of ``key``.
    """
    records = read_records(output_root)
    if key not in records:
        raise KeyError(f"no job record {key!r} in {state_dir(output_root) / _STATE_FILE}")
    record = replace(records[key], **changes)
    write_record(output_root, key, record)
    return record
