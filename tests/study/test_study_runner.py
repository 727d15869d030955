"""The study runner's choice of Table IV's configuration, ties included (the rule of run_views.best_pair)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tal_lab.config import load_config
from tal_lab.study.params import BACKBONE_CHOICES
from tal_lab.study.plan import RunSpec, StudyPlan, build_plan
from tal_lab.study.runner import table4_configuration

from fake_runs import write_run


def _finish(root: Path, plan: StudyPlan, configuration: str, avg: float, status: str = "finished") -> None:
    """Write the Table I run of ``configuration`` (first seed) at average mAP ``avg`` (fraction)."""
    spec: RunSpec = next(s for s in plan.runs if f"I:{configuration}" in s.uses)
    cfg = load_config({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": plan.preset}},
                       "model": {"backbone_type": BACKBONE_CHOICES[spec.backbone], "fpn_type": spec.neck,
                                 "head_type": spec.head},
                       "train_cfg": {"loss_weight": spec.loss_weight}, "opt": {"epochs": spec.epochs},
                       "init_rand_seed": spec.seed})
    write_run(root, spec.run_name(plan.data_tag), cfg, maps=[avg] * 5, status=status)


def test_a_tie_goes_to_the_papers_best_else_to_table1s_order(tmp_path: Path) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path / "data"), configurations=("original", "B", "D", "E"))
    runs = tmp_path / "runs"
    _finish(runs, plan, "D", 0.41)
    _finish(runs, plan, "original", 0.41)
    _finish(runs, plan, "B", 0.30)
    assert table4_configuration(plan, runs) == "original"  # tied with D, and first in Table I's order
    _finish(runs, plan, "E", 0.41, status="failed")
    assert table4_configuration(plan, runs) == "original"  # a failed run does not count
    shutil.rmtree(runs / next(s for s in plan.runs if "I:E" in s.uses).run_name(plan.data_tag))
    _finish(runs, plan, "E", 0.41)  # trained again, now finished
    assert table4_configuration(plan, runs) == "E"
