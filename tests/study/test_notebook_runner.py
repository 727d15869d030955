"""The study's papermill call: notebooks run in parallel end quietly, and a failing cell still fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import time

import nbformat
import papermill
import pytest
from nbclient.exceptions import CellTimeoutError

from tal_lab.study import jobs, reports
from tal_lab.study.reports import execute_notebook


def _notebook(path: Path, source: str, tags: list[str] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": tags or []})]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_parallel_notebooks_shut_down_without_an_error_line(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    # jupyter_client interrupts a kernel before shutting it down; ipykernel logged that as
    # "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" at the end of a successful
    # study (in 2 of 8 kernels shutting down together on a 2-core machine).
    notebook = _notebook(tmp_path / "ok.ipynb", "x = 1")
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda i: execute_notebook(notebook, tmp_path / f"out{i}.ipynb", {}, tmp_path),
                                range(8)))
    assert all(p.is_file() for p in outputs)
    captured = capfd.readouterr()
    assert "KeyboardInterrupt" not in captured.err and "ERROR" not in captured.err


def test_a_failing_cell_still_raises_with_its_error(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "bad.ipynb", "raise ValueError('boom')")
    with pytest.raises(papermill.PapermillExecutionError) as info:
        execute_notebook(notebook, tmp_path / "out.ipynb", {}, tmp_path)
    assert info.value.ename == "ValueError" and "boom" in info.value.evalue
    assert (tmp_path / "out.ipynb").is_file()


def test_a_tagged_cell_past_its_limit_times_out_instead_of_waiting_forever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(reports.TAGGED_CELL_TIMEOUTS_S, "widgets", 2)
    notebook = _notebook(tmp_path / "slow.ipynb", "import time; time.sleep(60)", tags=["widgets"])
    started = time.monotonic()
    with pytest.raises(CellTimeoutError):
        execute_notebook(notebook, tmp_path / "out.ipynb", {}, tmp_path)
    assert time.monotonic() - started < 40
    explore = nbformat.read(str(Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"), as_version=4)
    assert [c.source for c in explore.cells if "widgets" in c.metadata.get("tags", [])] == ["explorer.widgets()"]


def test_the_analysis_runs_a_timed_out_notebook_once_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def flaky(notebook: Path, output: Path, parameters: dict, cwd: Path) -> Path:
        calls.append(notebook)
        if len(calls) == 1:
            raise CellTimeoutError("A cell timed out while it was being executed, after 120 seconds.")
        return output

    monkeypatch.setattr(jobs, "execute_notebook", flaky)
    log: list[str] = []
    out = jobs._execute_retrying_a_timeout(tmp_path / "explore.ipynb", tmp_path / "o.ipynb", {}, tmp_path, log.append)
    assert out == tmp_path / "o.ipynb" and len(calls) == 2
    assert log == ["  explore.ipynb: A cell timed out while it was being executed, after 120 seconds.; "
                   "running it again in a new kernel"]


def test_a_kernel_that_never_started_is_started_again_and_a_cell_error_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels started side by side can lose a TCP port to another socket and never answer
    (seen in CI: 'Address already in use', then "Kernel didn't respond in 60 seconds")."""
    real = papermill.execute_notebook
    calls, lost_ports = [], [1]  # the first kernel never answers

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if lost_ports:
            lost_ports.pop()
            raise RuntimeError("Kernel didn't respond in 60 seconds")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    out = execute_notebook(_notebook(tmp_path / "ok.ipynb", "x = 1"), tmp_path / "out.ipynb", {}, tmp_path)
    assert len(calls) == 2 and nbformat.read(str(out), as_version=4).cells[-1].execution_count == 1

    calls.clear()
    with pytest.raises(papermill.PapermillExecutionError):  # the cell's error, raised after one run
        execute_notebook(_notebook(tmp_path / "bad.ipynb", "raise ValueError('boom')"), tmp_path / "bad_out.ipynb",
                         {}, tmp_path)
    assert len(calls) == 1

    def never(*args, **kwargs):
        calls.append(args[0])
        raise RuntimeError("Kernel died before replying to kernel_info")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", never)
    with pytest.raises(RuntimeError, match="Kernel died before replying"):
        execute_notebook(tmp_path / "ok.ipynb", tmp_path / "out2.ipynb", {}, tmp_path)
    assert len(calls) == reports.KERNEL_START_ATTEMPTS == 3
    assert reports.kernel_never_started(RuntimeError("Kernel didn't respond to heartbeats in 5 seconds and timed out"))
    assert not reports.kernel_never_started(RuntimeError("Kernel died"))  # died while running a cell: not retried


def test_the_kernel_process_stderr_goes_to_a_log_beside_the_notebook(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """What bypasses the notebook (a native library writing to fd 2, a kernel's shutdown race)
    lands in NAME.kernel.log, not in the study's console; cell output stays in the notebook."""
    notebook = _notebook(tmp_path / "native.ipynb", "import os, sys\nos.write(2, b'native message\\n')\nprint('cell output')")
    out = execute_notebook(notebook, tmp_path / "run.ipynb", {}, tmp_path)
    assert "native message" not in capfd.readouterr().err
    log = reports.kernel_log_path(out)
    assert log == tmp_path / "run.kernel.log" and "native message" in log.read_text()
    outputs = nbformat.read(str(out), as_version=4).cells[-1].outputs
    assert [o.get("text") for o in outputs] == ["cell output\n"]
    quiet = execute_notebook(_notebook(tmp_path / "quiet.ipynb", "x = 1"), tmp_path / "quiet_run.ipynb", {}, tmp_path)
    assert quiet.is_file() and not reports.kernel_log_path(quiet).exists()  # nothing to keep, no file
