"""Does a second study on new seeds agree with the first on the comparisons the first marked?

Two studies with the same configurations and different training seeds (``tal-lab study
--seeds 3`` and ``--seeds 3 --first-seed 1234567894``) each mark Table I / IV rows whose
difference to the reference row passes the combined seed-and-video test
(:mod:`tal_lab.evaluation.significance`). A mark a researcher can trust survives the second
study; :func:`compare_marks` lines the two tables' numeric frames up row by row and says, for each
comparison, whether it held.

A comparison counts as *large* when its effect, the difference to the reference as either study
measured it (the larger in size), exceeds the pooled seed std: the root mean of the four per-seed variances (the row and
the reference, in each study; each from the same number of seeds in a balanced study). A marked
large comparison must be marked again with the same sign; a mark on an effect below the seed
noise may come and go (that is what a 5% test does near its threshold), and is reported as such.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["REPLICATION_COLUMNS", "compare_marks", "replication_summary"]

REPLICATION_COLUMNS = ("key", "n_first", "n_second", "diff_first", "diff_second", "pooled_seed_std",
                       "large", "marked_first", "marked_second", "verdict")

_REQUIRED = ("key", "n_seeds", "diff_vs_ref", "significant")


def _check(frame: pd.DataFrame, name: str, metric: str) -> None:
    missing = [c for c in (*_REQUIRED, f"{metric} std") if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} table has no column(s) {missing}: pass a Table I / IV numeric frame "
                         "built with the significance test (reports/tables/table1_configurations.csv)")
    duplicated = frame["key"][frame["key"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"the {name} table has duplicate row key(s) {duplicated}")


def _mark(value: object) -> bool | None:
    """True / False / None (untested) from a frame cell (bool, 'True' / 'False' from a CSV, or empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        if value.strip() in ("", "nan", "None"):
            return None
        if value.strip() not in ("True", "False"):
            raise ValueError(f"significant must be True, False or empty, got {value!r}")
        return value.strip() == "True"
    return bool(value)


def _verdict(marked_first: bool | None, marked_second: bool | None, same_sign: bool, large: bool) -> str:
    if marked_first is None or marked_second is None:
        return "untested"
    if marked_first and marked_second:
        return "agrees" if same_sign else "flips (sign)"
    if not marked_first and not marked_second:
        return "agrees (unmarked)"
    return "flips" if large else "flips (below seed noise)"


def compare_marks(first: pd.DataFrame, second: pd.DataFrame, reference: str, metric: str = "avg_mAP") -> pd.DataFrame:
    """Row-by-row agreement of two studies' significance marks against ``reference``.

    Args:
        first, second: the numeric frames of the same table (Table I or IV) from two studies
            (``StudyTable.frame`` or the exported CSV): ``key``, ``n_seeds``, ``{metric} std``,
            ``diff_vs_ref`` (points) and ``significant``.
        reference: the reference row's key ('original' in Table I, 'actionformer' in Table IV).

    Returns:
        One row per key present in both (reference excluded), with :data:`REPLICATION_COLUMNS`:
        ``verdict`` is 'agrees' (marked in both, same sign), 'agrees (unmarked)', 'flips' (marked
        in one only, effect above the pooled seed std), 'flips (below seed noise)', 'flips (sign)'
        or 'untested' (a side had too few seeds for the test).

    Raises:
        ValueError: a frame lacks the columns, has duplicate keys, or lacks the reference row.
    """
    for frame, name in ((first, "first"), (second, "second")):
        _check(frame, name, metric)
        if reference not in set(frame["key"]):
            raise ValueError(f"the {name} table has no reference row {reference!r}; keys: {list(frame['key'])}")
    a, b = first.set_index("key"), second.set_index("key")
    ref_var = [float(t.loc[reference, f"{metric} std"]) ** 2 for t in (a, b)]
    rows = []
    for key in [k for k in a.index if k in b.index and k != reference]:
        variances = [float(a.loc[key, f"{metric} std"]) ** 2, float(b.loc[key, f"{metric} std"]) ** 2, *ref_var]
        pooled = math.sqrt(sum(variances) / 4) if all(math.isfinite(v) for v in variances) else math.nan
        d1, d2 = float(a.loc[key, "diff_vs_ref"]), float(b.loc[key, "diff_vs_ref"])
        effect = max(abs(d1), abs(d2))
        large = bool(math.isfinite(effect) and math.isfinite(pooled) and effect > pooled)
        m1, m2 = _mark(a.loc[key, "significant"]), _mark(b.loc[key, "significant"])
        rows.append({"key": key, "n_first": int(a.loc[key, "n_seeds"]), "n_second": int(b.loc[key, "n_seeds"]),
                     "diff_first": d1, "diff_second": d2, "pooled_seed_std": pooled,
                     "large": large, "marked_first": m1, "marked_second": m2,
                     "verdict": _verdict(m1, m2, d1 * d2 > 0, large)})
    return pd.DataFrame(rows, columns=list(REPLICATION_COLUMNS))


def replication_summary(comparison: pd.DataFrame) -> str:
    """One paragraph: how many marked large comparisons held, and every flip by name."""
    tested = comparison[comparison["verdict"] != "untested"]
    either = tested["marked_first"].astype(bool) | tested["marked_second"].astype(bool)
    marked_large = tested[either & tested["large"].astype(bool)]
    held = marked_large[marked_large["verdict"] == "agrees"]
    text = (f"{len(held)} of {len(marked_large)} marked comparisons whose effect exceeds the pooled seed std "
            f"were marked in both studies with the same sign")
    flips = tested[tested["verdict"].str.startswith("flips")]
    if flips.empty:
        return text + "; no mark flipped."
    listed = "; ".join(f"{r.key}: {r.diff_first:+.2f} ({'*' if r.marked_first else 'no mark'}) vs "
                       f"{r.diff_second:+.2f} ({'*' if r.marked_second else 'no mark'}), pooled seed std "
                       f"{r.pooled_seed_std:.2f}, {r.verdict}" for r in flips.itertuples())
    return text + f". Flipped: {listed}."
