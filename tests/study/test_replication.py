"""Two studies' marks lined up (tal_lab.study.replication) and the ``study-compare`` command."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tal_lab.cli.main import main as cli_main
from tal_lab.study.replication import compare_marks, replication_summary


def _table(rows: dict[str, tuple[float, float, object]], n: int = 3) -> pd.DataFrame:
    """A Table I numeric frame: key -> (diff_vs_ref, avg_mAP std, significant)."""
    return pd.DataFrame([{"key": k, "n_seeds": n, "avg_mAP": 50.0 + d, "avg_mAP std": s, "diff_vs_ref": d,
                          "significant": m} for k, (d, s, m) in rows.items()])


FIRST = _table({"original": (math.nan, 1.0, None), "A": (-30.0, 1.0, True), "B": (-3.0, 1.0, True),
                "C": (-0.5, 1.0, True), "D": (2.0, 1.0, True), "E": (0.2, 1.0, False)})
SECOND = _table({"original": (math.nan, 1.0, None), "A": (-28.0, 1.0, True), "B": (-2.5, 1.0, False),
                 "C": (0.1, 1.0, False), "D": (-2.0, 1.0, True), "E": (0.3, 1.0, False)})


def test_each_comparison_gets_a_verdict_from_its_marks_sign_and_the_pooled_seed_std() -> None:
    out = compare_marks(FIRST, SECOND, "original").set_index("key")
    assert "original" not in out.index
    assert out.loc["A", "verdict"] == "agrees" and out.loc["A", "large"]
    assert out.loc["B", "verdict"] == "flips" and out.loc["B", "large"]  # |-3| > pooled std 1
    assert out.loc["C", "verdict"] == "flips (below seed noise)" and not out.loc["C", "large"]
    assert out.loc["D", "verdict"] == "flips (sign)" and out.loc["D", "large"]
    assert out.loc["E", "verdict"] == "agrees (unmarked)"
    assert out["pooled_seed_std"].tolist() == pytest.approx([1.0] * 5)


def test_pooled_seed_std_is_the_root_mean_of_the_four_variances() -> None:
    first = _table({"original": (math.nan, 2.0, None), "A": (-5.0, 1.0, True)})
    second = _table({"original": (math.nan, 2.0, None), "A": (-5.0, 3.0, True)})
    row = compare_marks(first, second, "original").iloc[0]
    assert row["pooled_seed_std"] == pytest.approx(math.sqrt((4 + 1 + 4 + 9) / 4))


def test_one_seed_rows_are_untested_not_flips() -> None:
    first = _table({"original": (math.nan, math.nan, None), "A": (-5.0, math.nan, None)}, n=1)
    out = compare_marks(first, SECOND, "original")
    assert out.set_index("key").loc["A", "verdict"] == "untested"
    assert replication_summary(out).startswith("0 of 0 marked comparisons")


def test_summary_names_every_flip() -> None:
    text = replication_summary(compare_marks(FIRST, SECOND, "original"))
    assert text.startswith("1 of 3 marked comparisons whose effect exceeds the pooled seed std")
    assert "B: -3.00 (*) vs -2.50 (no mark), pooled seed std 1.00, flips" in text
    assert "C: -0.50" in text and "D: +2.00 (*) vs -2.00 (*)" in text and "E:" not in text


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["significant"]), "has no column(s) ['significant']"),
    (lambda f: f[f["key"] != "original"], "has no reference row 'original'"),
    (lambda f: pd.concat([f, f.iloc[[1]]]), "duplicate row key(s) ['A']"),
])
def test_bad_tables_are_errors_naming_the_problem(change, message: str) -> None:
    with pytest.raises(ValueError) as info:
        compare_marks(FIRST, change(FIRST), "original")
    assert message in str(info.value) and "second" in str(info.value)


def test_study_compare_reads_both_reports_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for folder, frame in (("reports", FIRST), ("reports_rep", SECOND)):
        (tmp_path / folder / "tables").mkdir(parents=True)
        frame.to_csv(tmp_path / folder / "tables" / "table1_configurations.csv", index=False)
    assert cli_main(["study-compare", str(tmp_path / "reports"), str(tmp_path / "reports_rep")]) == 0
    out = capsys.readouterr().out
    assert "Table I (reference original)" in out and "Table IV" not in out and "flips (sign)" in out
    assert "1 of 3 marked comparisons" in out
    (tmp_path / "reports_rep" / "tables" / "table1_configurations.csv").unlink()
    assert cli_main(["study-compare", str(tmp_path / "reports"), str(tmp_path / "reports_rep")]) == 1
    assert "does not exist (the other study has it)" in capsys.readouterr().err
