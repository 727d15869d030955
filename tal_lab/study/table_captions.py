"""What the captions of Tables I-IV say about significance marks, seeds, machines and precision.

The mark itself comes from the tables' ``significance`` hook
(:class:`tal_lab.evaluation.significance.SeedVideoTest`, the combined seed-and-video test);
here it becomes a '*' after a row's average mAP and sentences a reader needs to judge it: which
test, how many seeds each side had, which rows were not tested and why, where the runs ran, and
in which precision when not float32.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from tal_lab.evaluation.significance import SeedVideoTest

__all__ = ["MARK", "SPREAD", "mark_significant", "significance_sentence", "machine_sentence", "spread_sentence",
           "precision_part", "counted_runs", "newest_per"]

MARK = " *"  # appended to the average mAP of a row the test finds different from the reference
SPREAD = "; mean ± sample std over the n seeds of each row"  # what every table's cells hold


def mark_significant(cells: list[str], frame: pd.DataFrame) -> list[str]:
    """``cells`` (one per row) with :data:`MARK` where the frame's ``significant`` is True."""
    if "significant" not in frame.columns:
        return cells
    return [cell + (MARK if flag is True else "") for cell, flag in zip(cells, frame["significant"])]


def _seeds(count: object) -> str:
    return f"{count} seed{'' if count == 1 else 's'}"


def significance_sentence(frame: pd.DataFrame, test: SeedVideoTest | None) -> str:
    """The caption's account of the marks: the test, seeds per side, untested rows.

    Args:
        frame: the table's numeric frame (``key``, ``n_seeds``, and the test's columns when
            ``test`` ran: ``n_tested``, ``n_tested_ref``, ``significant``).
        test: the hook the table was built with (None: no test ran); its ``reference`` is the
            reference row's ``key``.
    """
    if test is None:
        return " No significance test was run: no row is marked."
    reference = test.reference
    alpha = 1.0 - test.level
    rows = frame[frame["key"] != reference]
    ref = frame.loc[frame["key"] == reference, "n_tested"]
    ref_n = int(ref.iloc[0]) if len(ref) else 0
    tested = rows[rows["significant"].notna()]
    untested = rows[rows["significant"].isna()]
    text = (f" '*' after an Avg mAP: it differs from the {reference} row's at two-sided p < {alpha:g} in "
            f"{test.method}. Rows compared with fewer than {_seeds(test.min_seeds)} on either side have no "
            "significance test and no mark: single-seed cells are never tested (one seed gives no estimate of "
            "training noise).")
    if len(tested):
        per_side = ", ".join(f"{k} {int(n)} vs {ref_n}" for k, n in zip(tested["key"], tested["n_tested"]))
        text += f" Seeds per side (row vs {reference}): {per_side}."
    if len(untested):
        listed = ", ".join(f"{k} ({_seeds(int(n))})" for k, n in zip(untested["key"], untested["n_tested"]))
        text += f" Not tested ({reference}: {_seeds(ref_n)} with detections): {listed}."
    return text


# What makes two rows of a table's pool the same run for a caption's counts: the cells keep the
# newest run per configuration and seed (a rerun replaces the older one), and a run evaluated at
# several epochs has one row per evaluation.
_RUN_IDENTITY = ("dataset", "data_kind", "data_preset", "data_seed", "backbone", "neck", "head", "loss_weight",
                 "epochs", "seed")


def newest_per(rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The newest row (``created``) for each value of ``keys`` (those present as columns): a
    rerun replaces the older run. Without any of ``keys``, every row, oldest first."""
    ordered = rows.sort_values("created", na_position="first", kind="stable") if "created" in rows.columns else rows
    present = [c for c in keys if c in rows.columns]
    return ordered.drop_duplicates(present, keep="last") if present else ordered


def counted_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run the table's cells hold: per run identity and seed the newest
    (``created``), and one row per run, not per evaluated epoch."""
    return newest_per(rows, _RUN_IDENTITY)


def _machine_of_row(row: dict[str, Any]) -> str | None:
    machine, device = row.get("machine"), row.get("device")
    if isinstance(machine, str) and machine:
        return machine
    if isinstance(device, str) and device:
        return f"{device.split(':')[0]}, processor not recorded"
    return None


def machine_sentence(runs: pd.DataFrame) -> str:
    """'Machine (each run's run.json): AMD EPYC, 2 CPUs (18 runs).': the machine each run
    recorded (:func:`tal_lab.core.machine.machine_of`; for runs older than that record, the
    torch device kind and 'processor not recorded'), over the runs the cells hold
    (:func:`counted_runs`)."""
    described = pd.Series([_machine_of_row(row) for row in counted_runs(runs).to_dict("records")],
                          dtype=object).dropna()
    if described.empty:
        return " Machine: not recorded."
    counts = described.value_counts()
    listed = "; ".join(f"{name} ({count} run{'' if count == 1 else 's'})" for name, count in sorted(counts.items()))
    return f" Machine (each run's run.json): {listed}."


def spread_sentence(frame: pd.DataFrame) -> str:
    """:data:`SPREAD`, and where rows have different seed counts, which: the caption's seed
    list is the union over rows, which a reader would otherwise take for every row's."""
    counts = sorted({int(n) for n in frame.get("n_seeds", pd.Series(dtype=int)) if n > 0})
    if len(counts) < 2:
        return SPREAD
    single = ", and a one-seed row has no std" if counts[0] == 1 else ""
    return f"{SPREAD}; rows have {counts[0]} to {counts[-1]} seeds (column n){single}"


def precision_part(rows: pd.DataFrame) -> str:
    """'bf16 autocast' when every run used it; '2 runs bf16 autocast, 11 runs float32' when mixed; ''
    when all are float32 (the reference precision) or none recorded it; over the runs the cells
    hold (:func:`counted_runs`)."""
    if "amp" not in rows.columns:
        return ""
    rows = counted_runs(rows)
    recorded = rows["amp"].dropna().astype(str)
    if recorded.empty or set(recorded) == {"none"}:
        return ""
    names = recorded.map(lambda amp: "float32" if amp == "none" else f"{amp} autocast")
    counts = names.value_counts()
    if len(counts) == 1 and len(recorded) == len(rows):
        return str(counts.index[0])
    listed = ", ".join(f"{n} run{'' if n == 1 else 's'} {name}" for name, n in sorted(counts.items()))
    unrecorded = len(rows) - len(recorded)
    return listed + (f", {unrecorded} not recorded" if unrecorded else "")
