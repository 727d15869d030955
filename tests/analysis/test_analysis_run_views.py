"""best_pair: Table IV's (backbone, neck), from Table I's frame or from one row per run, and its tie-break."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tal_lab.analysis.run_views import PAPER_BEST_PAIR, best_pair


def _frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["backbone", "neck", "avg_mAP"])


def test_the_highest_mean_wins_and_rows_without_results_are_left_out() -> None:
    table1 = _frame([("convTransformer", "identity", 40.0), ("sgp", "fpn", 45.0), ("conv", "fpn", np.nan)])
    assert best_pair(table1) == ("sgp", "fpn")
    # one row per run: a pair scores the mean of its runs (conv: 44, sgp/fpn: 43)
    runs = _frame([("sgp", "fpn", 50.0), ("conv", "identity", 44.0), ("sgp", "fpn", 36.0)])
    assert best_pair(runs) == ("conv", "identity")


def test_nothing_finished_gives_the_papers_best() -> None:
    assert PAPER_BEST_PAIR == ("sgp", "identity")
    assert best_pair(_frame([("conv", "fpn", np.nan)])) == PAPER_BEST_PAIR
    assert best_pair(_frame([])) == PAPER_BEST_PAIR
    assert best_pair(_frame([]), default=("conv", "fpn")) == ("conv", "fpn")


def test_a_tie_goes_to_the_papers_best_else_to_the_first_row() -> None:
    tied = [("convTransformer", "identity", 40.0), ("conv", "fpn", 42.0), ("sgp", "identity", 42.0)]
    assert best_pair(_frame(tied)) == ("sgp", "identity")  # the default is among the best
    assert best_pair(_frame(tied[:2] + [("sgp", "fpn", 42.0)])) == ("conv", "fpn")  # first in Table I's order
    assert best_pair(_frame([("sgp", "fpn", 42.0), ("conv", "fpn", 42.0)])) == ("sgp", "fpn")
    # means over runs tie too: (41 + 43) / 2 == 42
    runs = _frame([("conv", "fpn", 41.0), ("sgp", "identity", 42.0), ("conv", "fpn", 43.0)])
    assert best_pair(runs) == ("sgp", "identity")
    assert best_pair(runs, default=("maxpool", "identity")) == ("conv", "fpn")
