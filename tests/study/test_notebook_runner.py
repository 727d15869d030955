"""The study's papermill call, one child process per notebook: notebooks run in parallel end quietly,
a failing cell fails as papermill's own error, and a failure outside the cells is named."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill
import pytest

from tal_lab.study.notebook_process import NotebookProcessError, execute_notebook


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
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


def test_a_failure_outside_the_cells_names_the_notebook_and_the_error(tmp_path: Path) -> None:
    with pytest.raises(NotebookProcessError) as info:
        execute_notebook(tmp_path / "missing.ipynb", tmp_path / "out.ipynb", {}, tmp_path)
    assert info.value.ename == "FileNotFoundError" and "missing.ipynb" in str(info.value)
