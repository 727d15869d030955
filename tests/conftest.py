"""Shared test configuration.

Tests that read the golden reference files in ``../shared`` (beside the project; users'
machines do not have it) carry ``@pytest.mark.needs_shared`` and take its path from the
``shared_dir`` fixture. Without ``../shared`` they are skipped with that reason, unless
``TAL_LAB_REQUIRE_SHARED=1`` (set by ``.ci/run``), which turns its absence into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"

# Tiny test shapes gain nothing from more threads, and on a shared 2-core machine OpenMP threads
# that wait on each other make tiny ops 100x slower. Child processes (notebook kernels, DDP
# ranks) inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_shared: reads the reference files in ../shared")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DIR.is_dir():
        return
    if os.environ.get("TAL_LAB_REQUIRE_SHARED") == "1":
        return  # the shared_dir fixture fails those tests loudly
    skip = pytest.mark.skip(reason=f"../shared not found at {SHARED_DIR} (reference files for tests)")
    for item in items:
        if "needs_shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path of ../shared (golden reference data)."""
    if not SHARED_DIR.is_dir():
        pytest.fail(f"../shared is required (TAL_LAB_REQUIRE_SHARED=1) but missing at {SHARED_DIR}")
    return SHARED_DIR
