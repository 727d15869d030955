"""tal_lab.evaluation's package namespace: every module's public API, one object per name."""

from __future__ import annotations

import importlib

import tal_lab.evaluation as evaluation

MODULES = ("io", "encoding", "matching", "average_precision", "recall", "mean_ap", "bootstrap", "significance",
           "baselines")


def test_the_package_exports_every_public_name_of_its_modules() -> None:
    for name in MODULES:
        module = importlib.import_module(f"tal_lab.evaluation.{name}")
        for public in module.__all__:
            assert public in evaluation.__all__, f"tal_lab.evaluation does not export {name}.{public}"
            assert getattr(evaluation, public) is getattr(module, public)
    assert len(set(evaluation.__all__)) == len(evaluation.__all__)
    assert all(hasattr(evaluation, public) for public in evaluation.__all__)
