"""The measured seconds per epoch shipped with the package, the estimates made from them, and
the dry run that prints them beside each run's device or job."""

from __future__ import annotations

from pathlib import Path

import pytest

from tal_lab.study.estimates import epoch_figures, estimate_run, training_order
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, TABLE4_HEADS, RunSpec, build_plan
from tal_lab.study.progress import dry_run_text
from tal_lab.study.runner import LaunchOptions

TABLE = {"machine": "test machine, 2 CPUs", "figures": [
    {"size": "synthetic-quick", "configuration": "original", "head": "actionformer", "device": "cpu", "threads": 1,
     "seconds_per_epoch": 10.0, "eval_seconds": 4.0, "train_videos": 64},
    {"size": "thumos14", "configuration": "E", "head": "actionformer", "device": "cpu", "threads": 2,
     "seconds_per_epoch": 100.0, "eval_seconds": None, "train_videos": 200}]}
ORIGINAL = ("convTransformer", "identity", "actionformer")


def test_the_shipped_table_names_its_machine_and_covers_every_configuration_and_head() -> None:
    table = epoch_figures()
    assert table["machine"] and table["device"] == "cpu" and table["torch"] and len(table["commit"] or "") == 40
    for size in ("synthetic-tiny", "synthetic-quick", "thumos14"):
        rows = {(f["configuration"], f["head"]) for f in table["figures"] if f["size"] == size}
        assert {(c, "actionformer") for c in TABLE1_CONFIGURATIONS} <= rows, size
        assert {(c, h) for c in ("original", "E") for h in TABLE4_HEADS} <= rows, size
    assert all(f["seconds_per_epoch"] > 0 and f["threads"] >= 1 for f in table["figures"])


def test_an_estimate_is_the_figure_times_epochs_and_videos_plus_its_evaluations() -> None:
    run = RunSpec(*ORIGINAL, epochs=12, loss_weight=1.0, seed=1)
    plain = estimate_run(run, "synthetic-quick", "cpu", figures=TABLE)
    assert plain.seconds == pytest.approx(10.0 * (12 + 2) + 4.0)  # quick warms up 2 epochs; one final evaluation
    assert "10 s/epoch x 14 epochs + 1 evaluation(s)" in plain.basis and "test machine" in plain.basis
    table2 = RunSpec(*ORIGINAL, epochs=12, loss_weight=1.0, seed=1, eval_epochs=(1, 2, 4, 6, 12))
    assert estimate_run(table2, "synthetic-quick", "cpu", figures=TABLE).seconds == pytest.approx(140.0 + 5 * 4.0)
    half = estimate_run(run, "synthetic-quick", "cpu", train_videos=32, figures=TABLE)
    assert half.seconds == pytest.approx(5.0 * 14 + 4.0)
    sgp = RunSpec("sgp", "identity", "actionformer", epochs=30, loss_weight=1.0, seed=1)
    thumos = estimate_run(sgp, "thumos", "cpu", figures=TABLE)  # real THUMOS14 features: THUMOS14's shapes
    assert thumos.seconds == pytest.approx(100.0 * (30 + 5)) and "evaluation not timed" in thumos.basis
    assert estimate_run(sgp, "synthetic-thumos14", "cpu", figures=TABLE).seconds == thumos.seconds


@pytest.mark.parametrize("spec, tag, device, reason", [
    (RunSpec(*ORIGINAL, 12, 1.0, 1), "synthetic-quick", "cuda", "original/actionformer at synthetic-quick on cuda"),
    (RunSpec(*ORIGINAL, 12, 1.0, 1), "anet", "cpu", "no figure measured for data 'anet'"),
    (RunSpec("conv", "identity", "trident", 12, 1.0, 1), "synthetic-quick", "cpu", "B/trident at synthetic-quick"),
])
def test_no_estimate_where_no_figure_applies(spec: RunSpec, tag: str, device: str, reason: str) -> None:
    estimate = estimate_run(spec, tag, device, figures=TABLE)
    assert estimate.seconds is None and reason in estimate.basis


def test_dry_run_prints_each_run_with_its_slot_or_job_and_its_time(tmp_path: Path) -> None:
    plan = build_plan(preset="quick", data_root=str(tmp_path), tables=("I",), configurations=("original", "E", "B"))
    local = dry_run_text(plan, LaunchOptions(launcher="local", devices="cpu"), gpu_count=0, cpu_cores=4)
    assert "launcher local: 2 slot(s): cpu slot 0 (2 threads), cpu slot 1 (2 threads)" in local
    lines = {name: next(line for line in local.splitlines() if line.startswith(f"  {name}"))
             for name in plan.run_names()}
    assert "cpu slot 0" in lines[plan.run_names()[0]] and "cpu slot 1" in lines[plan.run_names()[1]]
    assert "cpu slot 0" in lines[plan.run_names()[2]] and all("~" in line for line in lines.values())
    assert "training: about" in local and "on 2 slot(s)" in local and not (tmp_path / "config.yaml").exists()

    gpus = dry_run_text(plan, LaunchOptions(devices="auto"), gpu_count=2, cpu_cores=8)
    assert "cuda:0" in gpus and "cuda:1" in gpus and gpus.count("no estimate (no figure measured") == 3
    assert "training: no estimate" in gpus

    slurm = dry_run_text(plan, LaunchOptions(launcher="slurm", gpus_per_run=1), gpu_count=0, cpu_cores=2)
    assert "launcher slurm: one job array of 3 task(s), 1 GPU(s)" in slurm and "array task 2" in slurm


def test_runs_start_table_one_first_and_longest_first() -> None:
    """Table IV waits for all of Table I, so Table I's runs go first; within each group the
    longest estimate starts first; a run without an estimate keeps its place after them."""
    table = {"machine": "test", "figures": [
        *TABLE["figures"],
        {"size": "synthetic-quick", "configuration": "B", "head": "actionformer", "device": "cpu", "threads": 1,
         "seconds_per_epoch": 3.0, "eval_seconds": 1.0, "train_videos": 64}]}

    def spec(backbone: str, uses: tuple[str, ...], loss_weight: float = 1.0, head: str = "actionformer") -> RunSpec:
        return RunSpec(backbone, "identity", head, epochs=12, loss_weight=loss_weight, seed=1, uses=uses)

    conv = spec("conv", ("I:B",))
    original = spec("convTransformer", ("I:original",))
    maxpool = spec("maxpool", ("I:maxpool",))  # no figure in this table
    lambda2 = spec("convTransformer", ("III:2",), loss_weight=2.0)
    trident = spec("convTransformer", ("IV:trident@original",), head="trident")  # no figure
    order = training_order([lambda2, conv, trident, maxpool, original], "synthetic-quick", "cpu", figures=table)
    assert order == [original, conv, maxpool, lambda2, trident]
