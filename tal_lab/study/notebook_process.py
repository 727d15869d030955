"""Run one notebook with papermill in a process of its own.

The study runs several notebooks at once from threads. papermill and nbclient in threads of one
process share the zmq context and its sockets, and jupyter_client 8 can then lose a kernel's
reply: the kernel is idle while its client waits forever (a study's analysis step hung this way
on ``explore.ipynb``, about once in five runs). A child process per notebook gives each client
its own context and event loop, and the threads only wait on processes.

The child reports a failed cell to the parent in a small JSON file, and the parent raises the
same ``papermill.PapermillExecutionError`` that an in-process call would raise. The child dies
with its parent: a killed or preempted study job must not leave a kernel training on beside
the job that resumes the run (the kernel in turn exits when the child does, as ipykernel's
parent poller sees it go).

Usage (what the parent runs)::

    python -m tal_lab.study.notebook_process REQUEST.json
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = ["execute_notebook", "NotebookProcessError"]

# Linux prctl option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1
# How often the child checks, where prctl is not available, that its parent is still there.
_PARENT_POLL_S = 0.5
# The fields of papermill's PapermillExecutionError, in its constructor's order.
_ERROR_FIELDS = ("cell_index", "exec_count", "source", "ename", "evalue", "traceback")


class NotebookProcessError(RuntimeError):
    """The notebook's process failed outside a cell (papermill could not start, the process
    was killed). ``ename`` / ``evalue`` as papermill's errors have them."""

    def __init__(self, notebook: Path, ename: str, evalue: str) -> None:
        super().__init__(f"{notebook}: {ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


def execute_notebook(notebook: str | Path, output: str | Path, parameters: Mapping[str, Any],
                     cwd: str | Path) -> Path:
    """Run ``notebook`` with papermill into ``output`` in a fresh ``python3`` kernel started in
    ``cwd``, from a child process.

    Raises:
        papermill.PapermillExecutionError: a cell failed; ``output`` holds the executed
            notebook with the error in that cell.
        NotebookProcessError: the process failed before or outside the cells.
    """
    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tal_lab_nb_") as scratch:
        request, error_file = Path(scratch) / "request.json", Path(scratch) / "error.json"
        request.write_text(json.dumps({"notebook": str(notebook), "output": str(output), "cwd": str(cwd),
                                       "parameters": dict(parameters), "error_file": str(error_file),
                                       "parent_pid": os.getpid()}))
        done = subprocess.run([sys.executable, "-m", "tal_lab.study.notebook_process", str(request)], check=False)
        if done.returncode == 0:
            return output
        if not error_file.is_file():
            raise NotebookProcessError(notebook, "ProcessExit", f"the notebook's process exited with code "
                                                                f"{done.returncode} (its messages are above)")
        error = json.loads(error_file.read_text())
    if "cell_index" in error:
        import papermill

        raise papermill.PapermillExecutionError(*(error[f] for f in _ERROR_FIELDS))
    raise NotebookProcessError(notebook, error["ename"], error["evalue"])


def _die_with_parent(parent_pid: int) -> None:
    """End this process as soon as the process that started it is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # elsewhere (macOS), and a second guard on Linux
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _run_here(notebook: str, output: str, parameters: Mapping[str, Any], cwd: str) -> None:
    # papermill and the notebook stack load only in the child: every tal-lab command imports
    # the study package, and they take about 1.5 s to import.
    import papermill

    # --log-level=CRITICAL: the kernel's start-up warnings (TCP transport) would fill the study's
    # log, and jupyter_client interrupts each kernel before shutting it down, which ipykernel logs
    # as an ERROR after a successful run. Cell errors still arrive through papermill.
    papermill.execute_notebook(notebook, output, parameters=dict(parameters), kernel_name="python3", cwd=cwd,
                               progress_bar=False, log_output=False, extra_arguments=["--log-level=CRITICAL"])


def main(argv: list[str] | None = None) -> int:
    """The child: run the request's notebook; on failure write the error file and return 1."""
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    _die_with_parent(int(request["parent_pid"]))
    error_file = Path(request["error_file"])
    try:
        _run_here(request["notebook"], request["output"], request["parameters"], request["cwd"])
    except Exception as err:  # reported to the parent, which raises it
        import papermill

        if isinstance(err, papermill.PapermillExecutionError):
            error = {f: getattr(err, f) for f in _ERROR_FIELDS}
        else:
            error = {"ename": type(err).__name__, "evalue": str(err)}
        error_file.write_text(json.dumps(error, default=str))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
