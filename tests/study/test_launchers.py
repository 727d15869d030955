"""Launchers without training: the job records, Slurm options, and the Slurm path end to end
through submitit against a fake ``sbatch`` / ``sacct`` (what was submitted, with which sbatch
options and dependencies, what ``--status`` then says, and a study started again)."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
import submitit
from submitit.core.utils import DelayedSubmission

from tal_lab.config import load_config
from tal_lab.study.job_state import JobRecord, analysis_key, read_records, state_dir, update_record, write_record
from tal_lab.study.jobs import TrainingJob
from tal_lab.study.launchers import (LocalLauncher, SlurmOptions, ThreadsLauncher, adopted_handle, live_state,
                                     parse_minutes)
from tal_lab.study.params import BACKBONE_CHOICES
from tal_lab.study.placement import device_slots
from tal_lab.study.plan import RunSpec, StudyPlan, build_plan, table4_specs
from tal_lab.study.progress import status_text, study_progress
from tal_lab.study.runner import CONTINUE_KEY, run_study

from fake_runs import write_run

FAKE_SBATCH = """#!/bin/sh
# Records each submission script and answers as sbatch does, with job ids from 4001.
n=$(cat "$FAKE_SLURM/count" 2>/dev/null || echo 4000); n=$((n + 1)); echo $n > "$FAKE_SLURM/count"
for last; do :; done
cp "$last" "$FAKE_SLURM/sbatch_$n.sh"
echo "Submitted batch job $n"
"""
# submitit looks for srun to tell that it is on a Slurm cluster; the jobs never start here.
FAKE_SACCT = """#!/bin/sh
cat "$FAKE_SLURM/sacct.txt"
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "slurm"
    folder.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("sacct", FAKE_SACCT), ("srun", "#!/bin/sh\nexit 1\n")):
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (folder / "sacct.txt").write_text("JobID|State|NodeList\n")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    submitit.SlurmJob.watcher.clear()
    return folder


def _sacct(folder: Path, **states: str) -> None:
    (folder / "sacct.txt").write_text("JobID|State|NodeList\n" + "".join(f"{j}|{s}|node1\n" for j, s in states.items()))


def _finish(root: Path, plan: StudyPlan, spec: RunSpec, avg: float) -> None:
    cfg = load_config({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": plan.preset}},
                       "model": {"backbone_type": BACKBONE_CHOICES[spec.backbone], "fpn_type": spec.neck,
                                 "head_type": spec.head},
                       "train_cfg": {"loss_weight": spec.loss_weight}, "opt": {"epochs": spec.epochs},
                       "init_rand_seed": spec.seed})
    write_run(root, spec.run_name(plan.data_tag), cfg, maps=[avg] * 5)


def test_slurm_time_limits_read_as_minutes() -> None:
    assert [parse_minutes(t) for t in ("90", "30:30", "4:00:00", "1-00", "2-01:30", "1-00:00:01")] == [
        90, 31, 240, 1440, 2970, 1441]
    with pytest.raises(ValueError, match="--time '4h' is not a Slurm time"):
        parse_minutes("4h")


def test_slurm_options_become_sbatch_parameters(fake_slurm: Path) -> None:
    options = SlurmOptions(partition="gpu", account="lab", time="2:00:00", cpus_per_job=8, constraint="h100",
                           extra=("qos=high", "mem=64G"))
    params = options.sbatch_parameters(gpus=2)
    assert params["partition"] == "gpu" and params["account"] == "lab" and params["time"] == 120
    assert params["gpus_per_node"] == 2 and params["cpus_per_task"] == 8 and params["constraint"] == "h100"
    assert params["additional_parameters"] == {"qos": "high", "mem": "64G"}
    bare = SlurmOptions().sbatch_parameters(gpus=0)
    assert bare == {"time": 240, "nodes": 1, "ntasks_per_node": 1, "job_name": "tal_lab-study",
                    "additional_parameters": {}}
    submitit.SlurmExecutor(folder="unused").update_parameters(**params)  # submitit accepts every name
    with pytest.raises(ValueError, match="--sbatch-extra 'qos' is not KEY=VALUE"):
        SlurmOptions(extra=("qos",))
    with pytest.raises(ValueError, match="--time '2 hours' is not a Slurm time"):
        SlurmOptions(time="2 hours")
    with pytest.raises(ValueError, match="--cpus-per-job must be an integer >= 0, got -1"):
        SlurmOptions(cpus_per_job=-1)


def test_job_records_round_trip_and_reject_unknown_fields(tmp_path: Path) -> None:
    record = JobRecord(launcher="local", job_id="12", where="cpu slot 0 (1 thread)", attempt=1,
                       submitted="2025-01-01T00:00:00+00:00", state="running", folder="/f", pid=12)
    write_record(tmp_path, "run-a", record)
    assert read_records(tmp_path) == {"run-a": record}
    assert update_record(tmp_path, "run-a", state="failed", error="boom").error == "boom"
    assert read_records(tmp_path)["run-a"].state == "failed"
    with pytest.raises(KeyError, match="no job record 'run-b'"):
        update_record(tmp_path, "run-b", state="failed")
    with pytest.raises(ValueError, match="state 'lost' is not one of"):
        JobRecord("local", "1", "x", 1, "t", "lost")
    (state_dir(tmp_path) / "jobs.json").write_text(json.dumps({"r": {**json.loads(
        (state_dir(tmp_path) / "jobs.json").read_text())["run-a"], "colour": "red"}}))
    with pytest.raises(ValueError, match=r"record 'r' has unknown field\(s\) \['colour'\]"):
        read_records(tmp_path)


def test_a_live_job_of_another_process_is_waited_for_a_dead_one_is_not() -> None:
    here = socket.gethostname()
    alive = JobRecord("local", "1", "cpu", 1, "t", "running", pid=1, host=here)  # pid 1 lives as long as the machine
    assert live_state(alive) == "running" and adopted_handle(alive) is not None
    gone = JobRecord("threads", "x", "cpu", 1, "t", "running", pid=2 ** 22 + 1, host=here)
    assert live_state(gone) == "ended" and adopted_handle(gone) is None
    assert adopted_handle(JobRecord("local", "1", "cpu", 1, "t", "finished", pid=1, host=here)) is None
    elsewhere = JobRecord("local", "1", "cpu", 1, "t", "running", pid=1, host=f"not-{here}")
    assert live_state(elsewhere) == "unknown" and adopted_handle(elsewhere) is None  # its pid means nothing here


def test_the_slurm_path_submits_an_array_then_the_analysis_after_it(tmp_path: Path, fake_slurm: Path) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path / "data"), tables=("I",), configurations=("original", "E"))
    runs, reports, log = tmp_path / "runs", tmp_path / "reports", []
    slurm = SlurmOptions(partition="gpu", account="lab", time="1:00:00", cpus_per_job=4, constraint="h100",
                         extra=("qos=high",))
    outcome = run_study(plan, output_root=runs, reports_dir=reports, launcher="slurm", gpus_per_run=2, slurm=slurm,
                        log=log.append)
    names = plan.run_names()
    assert outcome.submitted == {names[0]: "4001_0", names[1]: "4001_1", analysis_key(reports): "4002"}
    array = (fake_slurm / "sbatch_4001.sh").read_text()
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=60",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --cpus-per-task=4", "#SBATCH --constraint=h100",
                 "#SBATCH --qos=high", "#SBATCH --signal=USR2@"):
        assert line in array, line
    analysis = (fake_slurm / "sbatch_4002.sh").read_text()
    assert "#SBATCH --dependency=afterany:4001" in analysis and "--gpus-per-node" not in analysis
    job = DelayedSubmission.load(runs / "_study" / "submitit" / "4001_1" / "4001_1_submitted.pkl").function
    assert job.run_name == names[1] and job.ranks == 2 and job.parameters["device"] == "cuda"
    assert job.environment == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}  # Slurm sets CUDA_VISIBLE_DEVICES
    assert job.checkpoint().function is job  # preemption requeues the same job; it resumes from last.pt
    assert read_records(runs)[names[0]].state == "submitted"

    _sacct(fake_slurm, **{"4001_0": "RUNNING", "4001_1": "PENDING", "4002": "PENDING"})
    text, ok = status_text(plan, runs, reports)
    assert ok and "0 done, 1 running, 1 queued, 0 failed" in text and "analysis: slurm job 4002, queued" in text

    # Started again while they wait: nothing is submitted twice, only a new analysis job after them.
    log.clear()
    again = run_study(plan, output_root=runs, reports_dir=reports, launcher="slurm", slurm=slurm, log=log.append)
    assert again.submitted == {analysis_key(reports): "4003"}
    assert sum("already in job" in line for line in log) == 2
    assert "#SBATCH --dependency=afterany:4001" in (fake_slurm / "sbatch_4003.sh").read_text()

    # The first task trained; the second's job ended without finishing its run: failed, with its log.
    _finish(runs, plan, plan.runs[0], 0.4)
    stderr = runs / "_study" / "submitit" / "4001_1" / "4001_1_0_log.err"
    stderr.write_text("srun: error: node1: task 0: Out Of Memory\nslurmstepd: error: Detected 1 oom_kill event\n")
    _sacct(fake_slurm, **{"4001_0": "COMPLETED", "4001_1": "OUT_OF_MEMORY", "4003": "RUNNING"})
    text, ok = status_text(plan, runs, reports)
    assert not ok and "1 done, 0 running, 0 queued, 1 failed" in text
    assert "| slurmstepd: error: Detected 1 oom_kill event" in text


def test_table4_on_slurm_goes_through_a_continuation_job(tmp_path: Path, fake_slurm: Path) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path / "data"), tables=("I", "IV"),
                      configurations=("original", "E"))
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    outcome = run_study(plan, output_root=runs, reports_dir=reports, launcher="slurm", log=lambda line: None)
    assert outcome.submitted[CONTINUE_KEY] == "4002"
    assert "#SBATCH --dependency=afterany:4001" in (fake_slurm / "sbatch_4002.sh").read_text()
    assert [p.state for p in study_progress(plan, runs, reports)] == ["queued", "queued"]

    # Table I's jobs ended: the continuation (as Slurm would start it) picks E and submits the heads.
    _finish(runs, plan, plan.runs[0], 0.30)
    _finish(runs, plan, plan.runs[1], 0.41)
    _sacct(fake_slurm, **{"4001_0": "COMPLETED", "4001_1": "COMPLETED"})
    continuation = DelayedSubmission.load(runs / "_study" / "submitit" / "4002" / "4002_submitted.pkl").function
    submitted = continuation()
    heads = [s.run_name(plan.data_tag) for s in table4_specs(plan, "E", plan.seeds[0]) if s.head != "actionformer"]
    assert submitted == {heads[0]: "4003_0", heads[1]: "4003_1", analysis_key(reports): "4004"}
    assert "#SBATCH --array=0-1%2" in (fake_slurm / "sbatch_4003.sh").read_text()
    assert "#SBATCH --dependency=afterany:4003" in (fake_slurm / "sbatch_4004.sh").read_text()
    analysis = DelayedSubmission.load(runs / "_study" / "submitit" / "4004" / "4004_submitted.pkl").function
    assert analysis.plan.table4_pair == "E" and len(analysis.plan.runs) == 4
    progress = study_progress(plan, runs, reports)  # --status plans Table IV from the store too
    assert [p.state for p in progress] == ["done", "done", "queued", "queued"]
    assert [p.name for p in progress][2:] == heads and len(plan.runs) == 2  # the caller's plan is left as it was


def _environment_notebook(path: Path) -> Path:
    """A notebook that writes the variables its kernel started with to ``out``."""
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None, "outputs": [],
              "source": 'out = ""'},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": "import json, os\njson.dump({k: os.environ.get(k) for k in ('CUDA_VISIBLE_DEVICES', "
                        "'OMP_NUM_THREADS')}, open(out, 'w'))"}]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                             "display_name": "Python 3"}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_a_gpu_slots_kernel_sees_only_its_gpu(tmp_path: Path) -> None:
    """Through the threads launcher (a spawned process for the GPU slot) and submitit's local
    executor at once: both kernels see only the slot's GPU and its share of the threads."""
    notebook = _environment_notebook(tmp_path / "env.ipynb")
    slot = device_slots(("cuda:0", "cuda:1", "cuda:2", "cuda:3"), cpu_cores=8)[3]
    started = []
    for starter in (ThreadsLauncher(1), LocalLauncher(tmp_path / "runs", "10")):
        job = TrainingJob(run_name="env", notebook=notebook, output=tmp_path / f"{starter.name}.ipynb",
                          parameters={"out": str(tmp_path / f"{starter.name}.json")}, cwd=tmp_path,
                          environment=slot.environment())
        started.append((starter, starter.start(job, slot, attempt=1)))
    for starter, handle in started:
        assert starter.wait([handle]) == [handle] and handle.failure() is None, starter.name
        starter.close()
        seen = json.loads((tmp_path / f"{starter.name}.json").read_text())
        assert seen == {"CUDA_VISIBLE_DEVICES": "3", "OMP_NUM_THREADS": "2"}, starter.name
        assert handle.record.where == "cuda:3" and handle.record.launcher == starter.name
