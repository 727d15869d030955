"""A real two-run study through submitit's local executor (the cluster path on one machine).

Tiny preset, configurations original and E, 2 CPU slots. While the runs train, one job's
process is killed (SIGKILL: the study retries it) and the other is preempted the way Slurm
preempts (SIGUSR2: submitit checkpoints and requeues it); both resume from their last
checkpoint and finish, the analysis runs after them, and ``tal-lab study --status`` reports
them done.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tal_lab.cli import main as cli_main
from tal_lab.core.atomic_io import read_jsonl
from tal_lab.runs import RUN_FILES, run_status
from tal_lab.study.job_state import read_records, state_dir
from tal_lab.study.plan import StudyPlan, build_plan
from tal_lab.study.progress import study_progress
from tal_lab.study.runner import StudyOutcome, run_study

from tiny import FAST_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
FAST = [*FAST_OVERRIDES, "model.sgp_mlp_dim=32", "test_cfg.pre_nms_topk=200", "test_cfg.max_seg_num=50",
        "engine.progress=false"]
# Enough epochs (about 0.15 s each here) that a run is still training when its first checkpoint appears.
EPOCHS = 12
SELECTION = ["--preset", "tiny", "--tables", "I", "--configs", "original,E", "--epochs", str(EPOCHS)]


class LocalStudy:
    def __init__(self, plan: StudyPlan, outcome: StudyOutcome, runs: Path, reports: Path, log: list[str],
                 interrupted: dict[str, tuple[str, int]], running_seen: list[str]) -> None:
        self.plan, self.outcome, self.runs, self.reports, self.log = plan, outcome, runs, reports, log
        self.interrupted, self.running_seen = interrupted, running_seen

    def name(self, configuration: str) -> str:
        return next(s.run_name(self.plan.data_tag) for s in self.plan.runs if f"I:{configuration}" in s.uses)


def _task_pid(controller: int) -> int | None:
    """The job's process: the child of submitit's local controller (Linux /proc)."""
    try:
        children = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def _interrupt_each_after_its_first_epoch(plan: StudyPlan, runs: Path, signals: dict[str, signal.Signals],
                                          study: threading.Thread) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """Signal each run's job once its first checkpoint is written; returns run -> (signal,
    epochs done then) and the runs --status showed running just before."""
    interrupted: dict[str, tuple[str, int]] = {}
    running_seen: list[str] = []
    deadline = time.monotonic() + 120
    while len(interrupted) < len(signals) and study.is_alive() and time.monotonic() < deadline:
        records = read_records(runs) if (state_dir(runs) / "jobs.json").is_file() else {}
        for name, sig in signals.items():
            run_dir = runs / name
            # an epoch is done once both its checkpoint and its line in epochs.jsonl are written
            epochs_done = len(read_jsonl(run_dir / RUN_FILES["epochs"]))
            if name in interrupted or name not in records or not epochs_done or \
                    not (run_dir / RUN_FILES["checkpoint"]).is_file():
                continue
            pid = _task_pid(int(records[name].pid))
            if pid is None:  # the controller is between two tasks
                continue
            assert run_status(run_dir) == "running", f"{name} ended before it could be interrupted"
            running_seen += [p.name for p in study_progress(plan, runs, runs.parent / "reports")
                             if p.name == name and p.state == "running"]
            os.kill(pid, sig)
            interrupted[name] = (sig.name, epochs_done)
        time.sleep(0.02)
    return interrupted, running_seen


@pytest.fixture(scope="module")
def local_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStudy]:
    tmp = tmp_path_factory.mktemp("local_study")
    plan = build_plan(preset="tiny", data_root=str(tmp / "data"), tables=("I",), configurations=("original", "E"),
                      epochs=EPOCHS)
    runs, reports, log = tmp / "runs", tmp / "reports", []
    names = {c: next(s.run_name(plan.data_tag) for s in plan.runs if f"I:{c}" in s.uses) for c in ("original", "E")}
    result: dict[str, StudyOutcome] = {}
    with pytest.MonkeyPatch.context() as mp:
        # Jobs and their kernels import this checkout's tal_lab, one torch thread each.
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        mp.setenv("OMP_NUM_THREADS", "1")
        study = threading.Thread(target=lambda: result.update(outcome=run_study(
            plan, output_root=runs, reports_dir=reports, jobs=2, devices="cpu", overrides=FAST, launcher="local",
            log=log.append)))
        study.start()
        interrupted, running_seen = _interrupt_each_after_its_first_epoch(
            plan, runs, {names["original"]: signal.SIGKILL, names["E"]: signal.SIGUSR2}, study)
        study.join(timeout=300)
    assert not study.is_alive(), "the local study did not finish"
    yield LocalStudy(plan, result["outcome"], runs, reports, log, interrupted, running_seen)


def test_both_runs_land_in_the_store_after_being_interrupted_mid_run(local_study: LocalStudy) -> None:
    outcome = local_study.outcome
    assert outcome.ok, outcome.failed
    assert sorted(outcome.trained) == sorted(local_study.plan.run_names())
    assert set(local_study.interrupted) == set(outcome.trained)
    assert local_study.running_seen  # --status saw a run training with its job alive
    for name, (sig, epochs_done) in local_study.interrupted.items():
        run_dir = local_study.runs / name
        info = json.loads((run_dir / RUN_FILES["info"]).read_text())
        assert info["status"] == "finished" and info["epochs"] == EPOCHS
        assert 1 <= epochs_done < EPOCHS + 1, (name, sig, epochs_done)
        # resumed from its checkpoint (not started over), and every epoch logged once
        assert info["resumed"], (name, sig)
        epochs = [json.loads(line)["epoch"] for line in (run_dir / RUN_FILES["epochs"]).read_text().splitlines()]
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > EPOCHS


def test_the_killed_job_is_retried_and_the_preempted_one_requeued_by_submitit(local_study: LocalStudy) -> None:
    killed, preempted = local_study.name("original"), local_study.name("E")
    assert any(f"{killed}: stopped after" in line and "retrying from its last checkpoint" in line
               for line in local_study.log), local_study.log
    assert any(f"{killed}: training again (attempt 2)" in line for line in local_study.log)
    records = read_records(local_study.runs)
    assert records[killed].attempt == 2 and records[killed].state == "finished"
    assert records[preempted].attempt == 1 and records[preempted].launcher == "local"
    log = (Path(records[preempted].folder) / f"{records[preempted].job_id}_0_log.out").read_text()
    assert "Calling checkpoint method" in log and "Requeued job" in log


def test_the_analysis_runs_after_the_training_jobs(local_study: LocalStudy) -> None:
    finished = max((local_study.runs / n / RUN_FILES["results"]).stat().st_mtime for n in local_study.outcome.trained)
    for name in ("tables", "timelines", "feature_diversity", "explore"):
        executed = local_study.reports / "_work" / "notebooks" / f"{name}.ipynb"
        assert executed.stat().st_mtime > finished, name
    assert local_study.outcome.index == local_study.reports / "index.html" and local_study.outcome.index.is_file()
    table = (local_study.reports / "tables" / "table1_configurations.md").read_text()
    assert "| Original ActionFormer | 1 |" in table and "(E) | 1 |" in table
    analysis = [line for line in local_study.log if line.startswith("analysis: local job")]
    assert len(analysis) == 1


def test_status_reports_both_runs_done(local_study: LocalStudy, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["study", "--status", *SELECTION, "--data-root", local_study.plan.data_root,
            "--output-root", str(local_study.runs), "--reports", str(local_study.reports)]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "2 done, 0 running, 0 queued, 0 failed" in out
    assert all(f"done     {name}" in out for name in local_study.plan.run_names())
    assert f"reports: {local_study.reports / 'index.html'}" in out
