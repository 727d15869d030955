"""run_status: the one definition of a finished run, on run folders written as the engine writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tal_lab.config import load_config
from tal_lab.runs import RUN_FILES, RUN_STATUSES, load_epoch_evals, load_runs, run_status

from fake_runs import write_run

MAPS = [0.5, 0.4, 0.3, 0.2, 0.1]


@pytest.fixture
def cfg() -> dict:
    return load_config({"dataset_name": "synthetic", "opt": {"epochs": 2, "warmup_epochs": 1}})


def test_each_status_of_a_run_folder(tmp_path: Path, cfg: dict) -> None:
    runs = {
        "finished": write_run(tmp_path, "done", cfg, maps=MAPS),
        "running": write_run(tmp_path, "training", cfg),
        "failed": write_run(tmp_path, "broken", cfg, status="failed"),
    }
    for status, path in runs.items():
        assert run_status(path) == status
    assert run_status(tmp_path / "never") == "missing"
    (tmp_path / "empty").mkdir()
    assert run_status(tmp_path / "empty") == "missing"
    assert set(RUN_STATUSES) == {"finished", "running", "failed", "missing"}


def test_finished_needs_both_the_status_and_the_results(tmp_path: Path, cfg: dict) -> None:
    # killed after writing results.json, before marking the run finished: it resumes
    assert run_status(write_run(tmp_path, "killed", cfg, maps=MAPS, status="running")) == "running"
    marked = write_run(tmp_path, "marked", cfg, maps=MAPS)
    (marked / RUN_FILES["results"]).unlink()
    assert run_status(marked) == "running"


def test_the_tables_status_column_is_run_status(tmp_path: Path, cfg: dict) -> None:
    write_run(tmp_path, "a", cfg, maps=MAPS, epoch_maps={1: MAPS})
    write_run(tmp_path, "b", cfg, maps=MAPS, epoch_maps={1: MAPS}, status="running")
    write_run(tmp_path, "c", cfg, status="failed")
    runs = load_runs(tmp_path).set_index("name")
    assert runs["status"].to_dict() == {name: run_status(tmp_path / name) for name in "abc"}
    assert runs.loc["b", "avg_mAP"] == pytest.approx(30.0)  # results read, yet not finished
    evals = load_epoch_evals(tmp_path)
    assert evals.groupby("name")["status"].first().to_dict() == {"a": "finished", "b": "running"}


def test_an_unreadable_run_json_names_the_file(tmp_path: Path, cfg: dict) -> None:
    run = write_run(tmp_path, "torn", cfg)
    (run / RUN_FILES["info"]).write_text('{"status": "fin')
    with pytest.raises(ValueError, match=r"torn/run.json: not valid JSON"):
        run_status(run)
    with pytest.raises(ValueError, match=r"torn/run.json: not valid JSON"):
        load_runs(tmp_path)
