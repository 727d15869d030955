"""The study's units of work, as callables every launcher runs: train one run, analyse the store.

A :class:`TrainingJob` trains one run of the plan: with ``ranks`` > 1 it first trains through
``torchrun --nproc_per_node ranks -m tal_lab train`` (DistributedDataParallel; gloo on the CPU),
then executes ``notebooks/run_ablation.ipynb`` with papermill, which trains the run (one
process) or, after torchrun, finds it finished and draws its report. It is submitit
*checkpointable*: when Slurm preempts the job or its time runs out, submitit calls
:meth:`TrainingJob.checkpoint` and requeues the same job, and the notebook resumes the run from
``checkpoints/last.pt`` (the engine writes it after every epoch). In its own process (a submitit
job, or a spawned process for a GPU slot) the job first takes its slot's environment
(``CUDA_VISIBLE_DEVICES``, thread counts), which the kernel inherits.

An :class:`AnalysisJob` runs the analysis notebooks over the run store once the training is
done, and exports the reports; the planned runs that did not finish are listed as failures on
the index page, so none is skipped silently.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from submitit.helpers import Checkpointable, DelayedSubmission

from tal_lab.config import dump_config
from tal_lab.core.atomic_io import write_text_atomic
from tal_lab.runs import RUN_FILES, run_status
from tal_lab.study.params import ablation_setup
from tal_lab.study.plan import ANALYSIS_NOTEBOOKS, StudyPlan
from tal_lab.study.reports import execute_notebook, export_reports, notebook_error

__all__ = ["SETUP_PARAMETERS", "TrainingJob", "AnalysisJob", "AnalysisOutcome", "torchrun_command", "notebook_failure",
           "notebook_traceback", "run_failure"]

# run_ablation.ipynb's parameters that ablation_setup takes (the rest only shape the report).
SETUP_PARAMETERS = tuple(inspect.signature(ablation_setup).parameters)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def torchrun_command(config: Path, output_root: Path, run_name: str, ranks: int) -> list[str]:
    """``torchrun --standalone --nproc_per_node ranks -m tal_lab train CONFIG --resume`` with
    this interpreter (``python -m torch.distributed.run`` is torchrun); ``--standalone`` picks a
    free rendezvous port, so several such runs share a node."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
            "-m", "tal_lab", "train", str(config), "--output-root", str(output_root), "--name", run_name,
            "--resume", "--no-progress"]


def _error_outputs(notebook: Path) -> list[dict[str, Any]]:
    if not notebook.is_file():
        return []
    try:
        nb = json.loads(notebook.read_text())
    except json.JSONDecodeError:  # papermill was killed while writing it
        return []
    return [o for c in nb.get("cells", []) for o in c.get("outputs", []) if o.get("output_type") == "error"]


def notebook_failure(notebook: Path) -> str | None:
    """'ename: evalue' of the first error in an executed notebook, or None."""
    errors = _error_outputs(notebook)
    return f"{errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else None


def notebook_traceback(notebook: Path, lines: int = 8) -> list[str]:
    """The last ``lines`` lines of the first error's traceback (colours removed)."""
    errors = _error_outputs(notebook)
    if not errors:
        return []
    text = "\n".join(_ANSI.sub("", str(part)) for part in errors[0].get("traceback", []))
    return [line for line in text.splitlines() if line.strip()][-lines:]


def run_failure(run_dir: Path) -> str | None:
    """The error the engine recorded in a failed run's run.json, or None."""
    info_path = run_dir / RUN_FILES["info"]
    if run_status(run_dir) != "failed":
        return None
    return str(json.loads(info_path.read_text()).get("error") or "run.json says failed")



def print_line(line: str) -> None:
    """The study's log on standard output, flushed per line (a module function, so jobs that
    carry it pickle for submitit)."""
    print(line, flush=True)

@dataclass
class TrainingJob(Checkpointable):
    """Train one run of the plan, then draw its report (see the module docstring).

    Attributes:
        run_name: the run's folder name in the store.
        notebook: run_ablation.ipynb; ``output``: where its executed copy goes.
        parameters: the notebook's parameters.
        cwd: the kernel's working directory (the project root).
        environment: the slot's variables, taken when the job has its own process.
        ranks: training processes (torchrun when > 1).
    """

    run_name: str
    notebook: Path
    output: Path
    parameters: dict[str, Any]
    cwd: Path
    environment: dict[str, str] = field(default_factory=dict)
    ranks: int = 1

    def __call__(self) -> str:
        """The job in a process of its own (submitit, or a spawned process): the slot's
        environment first, so the kernel and torchrun's ranks inherit it."""
        os.environ.update(self.environment)
        return self.run()

    def run(self) -> str:
        """Train and report in this process as it is (the CPU path of the threads launcher)."""
        if self.ranks > 1:
            self._train_distributed()
        execute_notebook(self.notebook, self.output, self.parameters, self.cwd)
        return self.run_name

    def checkpoint(self) -> DelayedSubmission:
        """Called by submitit on preemption or time-out: requeue this same job. Nothing needs
        saving: the engine checkpoints every epoch and the notebook trains with resume=True."""
        return DelayedSubmission(self)

    def _train_distributed(self) -> None:
        setup = ablation_setup(**{k: v for k, v in self.parameters.items() if k in SETUP_PARAMETERS})
        config = self.output.with_suffix(".yaml")
        dump_config(setup.cfg, config)
        log_path = self.output.with_suffix(".torchrun.log")
        command = torchrun_command(config, setup.output_root, setup.run_name, self.ranks)
        done = subprocess.run(command, cwd=self.cwd, env={**os.environ, **self.environment}, capture_output=True,
                              text=True, check=False)
        write_text_atomic(log_path, f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}")
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"torchrun with {self.ranks} ranks failed (exit {done.returncode}; log {log_path}):\n"
                               f"{tail}")


def _execute_retrying_a_timeout(notebook: Path, output: Path, parameters: dict[str, Any], cwd: Path,
                                log: Callable[[str], None]) -> Path:
    """:func:`execute_notebook`, once more in a fresh kernel when a tagged cell timed out
    (``reports.TAGGED_CELL_TIMEOUTS_S``: a lost reply, not a slow cell)."""
    from nbclient.exceptions import CellTimeoutError

    try:
        return execute_notebook(notebook, output, parameters, cwd)
    except CellTimeoutError as err:
        log(f"  {notebook.name}: {str(err).splitlines()[0]}; running it again in a new kernel")
        return execute_notebook(notebook, output, parameters, cwd)


@dataclass
class AnalysisOutcome:
    """What the analysis did: the notebooks executed, what failed (name -> message), the index."""

    notebooks: list[Path]
    failed: dict[str, str]
    index: Path


@dataclass
class AnalysisJob:
    """Run the analysis notebooks over the run store, ``jobs`` at a time, then export the reports.

    Attributes:
        failures: training failures already known (name -> message); planned runs that are not
            finished in the store are added to them.
    """

    plan: StudyPlan
    output_root: Path
    reports_dir: Path
    notebooks: Path
    cwd: Path
    device: str
    num_threads: int
    jobs: int
    failures: dict[str, str] = field(default_factory=dict)

    def __call__(self, log: Callable[[str], None] | None = None) -> AnalysisOutcome:
        log = log or print_line
        failed = {**self.failures, **self._unfinished()}
        started, since = time.perf_counter(), self._analysis_start_mark()
        notebooks = []
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {}
            for name in ANALYSIS_NOTEBOOKS:
                output = self.reports_dir / "_work" / "notebooks" / f"{name}.ipynb"
                log(f"analysis: {name}.ipynb")
                futures[pool.submit(_execute_retrying_a_timeout, self.notebooks / f"{name}.ipynb", output,
                                    self.parameters(name), self.cwd, log)] = name
                notebooks.append(output)
            for future, name in futures.items():
                err = future.exception()
                if err is not None:  # one failed notebook must not stop the others
                    failed[f"{name}.ipynb"] = notebook_error(err)
                    log(f"  {name}: FAILED: {notebook_error(err)}")
        log(f"analysis: done in {time.perf_counter() - started:.0f} s")
        index = export_reports(self.reports_dir, plan_text=self.plan.describe(), failed=failed, log=log, since=since,
                               run_names=self.plan.run_names())
        return AnalysisOutcome(notebooks=notebooks, failed=failed, index=index)

    def _analysis_start_mark(self) -> float:
        """When the analysis began, on the report folder's own clock: the index lists the files
        written from then on, and a cluster's shared file system stamps them with its server's
        time, which can lag the node's."""
        mark = self.reports_dir / "_work" / "analysis_started"
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
        return mark.stat().st_mtime

    def _unfinished(self) -> dict[str, str]:
        """Planned runs the store does not hold finished, with why (never skipped silently)."""
        out = {}
        for name in self.plan.run_names():
            if name in self.failures:
                continue
            status = run_status(self.output_root / name)
            if status != "finished":
                out[name] = run_failure(self.output_root / name) or f"not finished (run status {status})"
        return out

    def parameters(self, name: str) -> dict[str, Any]:
        """Parameters of each analysis notebook: the store, the data and where files go."""
        plan = self.plan
        common = {"runs_root": str(self.output_root), "data_tag": plan.data_tag,
                  "output_dir": str(self.reports_dir / ("tables" if name == "tables" else "figures"))}
        table1 = {use[2:]: spec.run_name(plan.data_tag) for spec in plan.runs for use in spec.uses
                  if use.startswith("I:") and spec.seed == plan.seeds[0]
                  and run_status(self.output_root / spec.run_name(plan.data_tag)) == "finished"}  # failed runs out
        if name == "tables":
            return {**common, "table1_epochs": plan.table1_epochs, "tables": list(plan.tables),
                    "table2_source": "epoch_evals" if plan.table2_runs == "one" else "runs",
                    "table4_pair": plan.table4_pair}
        if name == "timelines":  # the original, the paper's best (E) and two more
            return {**common, "runs": [table1[k] for k in ("original", "E", "A", "D") if k in table1]}
        if name == "feature_diversity":  # one run per backbone, all with the original neck
            return {**common, "runs": [table1[k] for k in ("original", "B", "E", "maxpool") if k in table1],
                    "device": self.device, "num_threads": self.num_threads}
        return common
