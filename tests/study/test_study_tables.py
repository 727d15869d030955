"""Tables I-IV from a run store on disk, exports, and the seed-aware significance hook."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tal_lab.study import paper_results as paper
from tal_lab.analysis.complexity import model_complexity
from tal_lab.evaluation.significance import paired_significance
from tal_lab.analysis.study_table import StudyTable, latex_escape
from tal_lab.study.tables import (study_tables, table_configurations, table_epochs, table_heads,
                                     table_loss_weight)
from tal_lab.config import PAPER_CONFIGURATIONS
from tal_lab.evaluation import mean_average_precision
from tal_lab.models import build_detector
from tal_lab.runs import STANDARD_TIOUS, load_epoch_evals, load_runs

from fake_runs import write_run
from tiny import PYRAMID, tiny_config


def tiny_cfg(backbone: str, neck: str, **extra: object) -> dict:
    return tiny_config(PYRAMID, dataset_name="synthetic", dataset={"synthetic": {"preset": "quick", "seed": 0}},
                       model={"backbone_type": backbone, "fpn_type": neck}, **extra)


def make_run(root: Path, name: str, backbone: str, neck: str, seed: int, avg: float, *, loss_weight: float = 1.0,
             epochs: int = 6, head: str = "actionformer", kind: str = "synthetic",
             evals: dict[int, float] | None = None, sec_per_epoch: float = 2.0, created: str | None = None) -> Path:
    """A finished run of ``epochs`` epochs (no warm-up) at average mAP ``avg`` (percent), with
    mAP@t = avg + 10 * (0.5 - t); ``evals``: average mAP at epochs evaluated during training."""
    data = ({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": "quick", "seed": 0}}}
            if kind == "synthetic" else {"dataset_name": "thumos", "dataset": {"feat_folder": "/data/i3d"}})
    cfg = tiny_config(PYRAMID, **data, model={"backbone_type": backbone, "fpn_type": neck, "head_type": head},
                      train_cfg={"loss_weight": loss_weight}, opt={"epochs": epochs, "warmup_epochs": 0},
                      init_rand_seed=seed)
    return write_run(root, name, cfg, maps=_maps(avg), epoch_maps={ep: _maps(v) for ep, v in (evals or {}).items()},
                     seconds_per_epoch=sec_per_epoch, num_params=12345,
                     created=created or f"2025-01-01T00:00:{seed:02d}")


def _maps(avg: float) -> list[float]:
    """mAP per tIoU (fractions) around the average ``avg`` (percent)."""
    return [(avg + 10 * (0.5 - t)) / 100 for t in STANDARD_TIOUS]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for key, c in PAPER_CONFIGURATIONS.items():
        if key == "C":
            continue  # a configuration without runs
        seeds = (0, 1, 2) if key in ("original", "E") else (0,)
        for s in seeds:
            make_run(root, f"{key}-s{s}", c["backbone_type"], c["fpn_type"], s, 40.0 + 2 * s + (key == "E"),
                     sec_per_epoch=1.0 + s)
    make_run(root, "orig-s0-rerun-old", "convTransformer", "identity", 0, 99.0,  # same seed, older: dropped
             created="2024-01-01T00:00:00")
    for lw in (0.2, 0.5, 2.0, 5.0, 3.0):
        make_run(root, f"lw{lw}", "convTransformer", "identity", 0, 30.0 + lw, loss_weight=lw)
    for ep in (1, 4):
        make_run(root, f"ep{ep}", "convTransformer", "identity", 0, 10.0 * ep, epochs=ep)
    make_run(root, "long", "convTransformer", "identity", 5, 50.0, epochs=12, evals={1: 5.0, 4: 20.0, 12: 50.0})
    make_run(root, "trident", "sgp", "identity", 0, 45.0, head="trident")
    return root


def test_table_one_rows_statistics_paper_columns_and_caption(store: Path) -> None:
    table = table_configurations(load_runs(store))
    f = table.frame.set_index("key")
    assert list(f.index) == ["original", "A", "B", "C", "D", "E"]
    assert f.loc["original", "n_seeds"] == 3 and f.loc["original", "seeds"] == "0,1,2"
    # seeds 0, 1, 2 give 40, 42, 44 (the older duplicate of seed 0, 99, is ignored)
    assert f.loc["original", "avg_mAP"] == pytest.approx(42.0)
    assert f.loc["original", "avg_mAP std"] == pytest.approx(2.0)
    assert f.loc["original", "mAP@0.3"] == pytest.approx(44.0)
    assert f.loc["A", "n_seeds"] == 1 and math.isnan(f.loc["A", "avg_mAP std"])
    assert f.loc["E", "paper avg_mAP"] == 67.44
    # synthetic runs beside the paper's THUMOS14 numbers: shown, but no difference across datasets
    assert not any(c.startswith("diff ") for c in f.columns) and not any("Δ" in c for c in table.display.columns)
    assert "Δ" not in table.caption and "orientation only" in table.caption
    assert f.loc["C", "n_seeds"] == 0 and math.isnan(f.loc["C", "avg_mAP"]) and f.loc["C", "paper avg_mAP"] == 57.88
    assert any("(C)" in note for note in table.notes)
    sgp = tiny_cfg("sgp", "identity")
    assert f.loc["E", "params_M"] == pytest.approx(sum(p.numel() for p in build_detector(sgp).parameters()) / 1e6)
    assert f.loc["E", "GFLOPs"] == pytest.approx(model_complexity(sgp).gflops) and f.loc["E", "GFLOPs"] > 0
    assert f.loc["original", "sec_per_epoch"] == pytest.approx(2.0)
    assert "synthetic data (preset 'quick', data seed 0)" in table.caption
    assert "not THUMOS14" in table.caption and "seeds 0, 1, 2" in table.caption and "6 epochs" in table.caption
    disp = table.display.set_index("Configuration")
    assert disp.loc[paper.TABLE1_LABELS["original"], "Avg mAP"] == "42.00 ± 2.00"
    assert disp.loc[paper.TABLE1_LABELS["A"], "Avg mAP"] == "40.00"
    assert disp.loc[paper.TABLE1_LABELS["C"], "Avg mAP paper"] == "57.88"
    assert "Avg mAP Δ" not in disp.columns  # synthetic runs: no difference from THUMOS14 numbers


def test_data_identity_is_chosen_and_stated(store: Path, tmp_path: Path) -> None:
    runs = load_runs(store)
    real = make_run(tmp_path, "real-orig", "convTransformer", "identity", 0, 66.0, kind="real")
    both = pd.concat([runs, load_runs(tmp_path)], ignore_index=True)
    table = table_configurations(both, complexity=False)
    assert table.frame.set_index("key").loc["original", "avg_mAP"] == pytest.approx(66.0)
    assert "THUMOS14 (real features, /data/i3d)" in table.caption and "SYNTHETIC" not in table.caption
    # ours on THUMOS14 beside the paper's THUMOS14: now the difference is meaningful and shown
    assert table.frame.set_index("key").loc["original", "diff avg_mAP"] == pytest.approx(66.0 - 66.80)
    assert table.display.set_index("Configuration").loc[paper.TABLE1_LABELS["original"], "Avg mAP Δ"] == "-0.80"
    assert "Δ = ours − paper" in table.caption
    assert any("synthetic data" in note and "left out" in note for note in table.notes)
    synthetic = table_configurations(both, data="synthetic", complexity=False)
    assert synthetic.frame.set_index("key").loc["original", "avg_mAP"] == pytest.approx(42.0)
    assert real.is_dir()


def test_table_two_from_separate_runs_or_one_run(store: Path) -> None:
    runs, evals = load_runs(store), load_epoch_evals(store)
    separate = table_epochs(runs, evals)
    f = separate.frame.set_index("epoch")
    assert list(f.index) == [1, 4, 6, 8, 12, 15, 25, 50]
    assert f.loc[1, "avg_mAP"] == pytest.approx(10.0) and f.loc[4, "avg_mAP"] == pytest.approx(40.0)
    assert f.loc[6, "n_seeds"] == 3 and f.loc[8, "n_seeds"] == 0 and f.loc[8, "paper avg_mAP"] == 51.54
    assert f.loc[1, "paper note"] == "Some classes not predicted"
    assert "separate runs" in separate.caption
    within = table_epochs(runs, evals, source="epoch_evals", epochs=[1, 4, 12])
    g = within.frame.set_index("epoch")
    assert g.loc[4, "avg_mAP"] == pytest.approx(20.0) and g.loc[12, "avg_mAP"] == pytest.approx(50.0)
    assert "runs of 12 epochs evaluated at the listed epochs" in within.caption
    assert "seed 5" in within.caption
    with pytest.raises(ValueError, match="epoch evaluations"):
        table_epochs(runs, None, source="epoch_evals")


def test_table_three_loss_weights(store: Path) -> None:
    table = table_loss_weight(load_runs(store))
    f = table.frame.set_index("loss_weight")
    assert list(f.index) == [0.2, 0.5, 1.0, 2.0, 3.0, 5.0]
    assert list(table.frame.columns[:3]) == ["loss_weight", "n_seeds", "seeds"]
    assert f.loc[0.2, "avg_mAP"] == pytest.approx(30.2) and f.loc[0.2, "paper avg_mAP"] == 65.0
    assert f.loc[1.0, "n_seeds"] == 3 and f.loc[1.0, "mAP@0.7"] == pytest.approx(40.0)
    assert math.isnan(f.loc[3.0, "paper mAP@0.5"])
    assert "mAP@0.3" not in table.frame.columns and list(table.display.columns)[:3] == ["λ_reg", "n", "mAP@0.5"]
    # the caption's seed list is the union over rows: it says that the rows' counts differ
    assert "rows have 1 to 3 seeds (column n), and a one-seed row has no std" in table.caption
    one_seed = table_loss_weight(load_runs(store).query("seed == 0"))
    assert set(one_seed.frame["n_seeds"]) == {1} and "rows have" not in one_seed.caption


def test_head_table_and_missing_store(store: Path) -> None:
    table = table_heads(load_runs(store), complexity=False)
    f = table.frame.set_index("key")
    assert list(f.index) == ["actionformer", "trident", "decoupled"]
    assert f.loc["actionformer", "paper avg_mAP"] == 67.44 and math.isnan(f.loc["trident", "paper avg_mAP"])
    assert f.loc["trident", "avg_mAP"] == pytest.approx(45.0) and f.loc["decoupled", "n_seeds"] == 0
    empty = study_tables(pd.DataFrame(), complexity=False)
    assert [t.name for t in empty] == ["table1_configurations", "table2_epochs", "table3_loss_weight"]
    assert all(t.frame["n_seeds"].eq(0).all() for t in empty)


def test_exports_are_well_formed(store: Path, tmp_path: Path) -> None:
    table = table_configurations(load_runs(store))
    paths = table.export(tmp_path / "tables")
    assert sorted(paths) == ["csv", "md", "tex"] and all(p.is_file() for p in paths.values())
    assert not [p for p in (tmp_path / "tables").iterdir() if p.name.startswith(".")]  # no temp files left
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(table.frame.columns) and len(back) == len(table.frame)
    assert np.allclose(back["avg_mAP"].to_numpy(), table.frame["avg_mAP"].to_numpy(), equal_nan=True)
    md = paths["md"].read_text().splitlines()
    rows = [line for line in md if line.startswith("|")]
    assert len(rows) == len(table.frame) + 2
    assert len({line.count(" | ") for line in rows}) == 1  # every row has the same number of cells
    assert md[0].startswith("**Table I.**") and "THUMOS14" in md[0]
    tex = paths["tex"].read_text()
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{table}") == 1 and r"\caption{" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == len(table.frame)
    assert {line.count(" & ") for line in body} == {len(table.display.columns) - 1}
    assert "±" not in tex and "Δ" not in tex and "λ" not in tex
    assert latex_escape("a_b & 5% ±") == r"a\_b \& 5\% $\pm$"
    with pytest.raises(ValueError, match="unknown export format"):
        table.export(tmp_path, formats=["xlsx"])
    with pytest.raises(ValueError, match="file stem"):
        StudyTable("bad name", "T", pd.DataFrame(), "c")


def _detections(gt: pd.DataFrame, hit: float, rng: np.random.Generator) -> pd.DataFrame:
    """Detections that find a fraction ``hit`` of the GT, plus random false positives."""
    rows = [(r["video-id"], r["t-start"], r["t-end"], r["label"], rng.uniform(0.5, 1))
            for _, r in gt.iterrows() if rng.uniform() < hit]
    rows += [(v, s, s + 3.0, int(rng.integers(0, 2)), rng.uniform(0, 1))
             for v in gt["video-id"].unique() for s in rng.uniform(0, 50, size=3)]
    return pd.DataFrame(rows, columns=["video-id", "t-start", "t-end", "label", "score"])


@pytest.fixture(scope="module")
def detection_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """original, A (the original's detections again), E (much better): 3 seeds each; B: one
    much better seed; the other heads on E's pair: one seed each. Every run saved its
    detections, and its results are their average mAP on ``gt``."""
    root = tmp_path_factory.mktemp("detections")
    rng = np.random.default_rng(0)
    gt = pd.DataFrame([(f"v{v}", s, s + 4.0, int(rng.integers(0, 2))) for v in range(30) for s in (5.0, 20.0, 40.0)],
                      columns=["video-id", "t-start", "t-end", "label"])
    original = {s: _detections(gt, 0.3 + 0.05 * s, rng) for s in (0, 1, 2)}
    rows = {"original": original, "A": original, "E": {s: _detections(gt, 0.95, rng) for s in (0, 1, 2)},
            "B": {0: _detections(gt, 0.95, rng)}}
    for key, by_seed in rows.items():
        c = PAPER_CONFIGURATIONS[key]
        for s, dets in by_seed.items():
            avg = 100 * mean_average_precision(gt, dets).average_mAP
            run = make_run(root, f"{key}-{s}", c["backbone_type"], c["fpn_type"], s, avg)
            dets.to_csv(run / "detections.csv", index=False)
    for head in ("trident", "decoupled"):
        dets = _detections(gt, 0.9, rng)
        run = make_run(root, f"{head}-0", "sgp", "identity", 0, 100 * mean_average_precision(gt, dets).average_mAP,
                       head=head)
        dets.to_csv(run / "detections.csv", index=False)
    return root, gt


def test_marks_come_from_the_combined_test_with_its_seeds_in_the_caption(
        detection_store: tuple[Path, pd.DataFrame]) -> None:
    root, gt = detection_store
    hook = paired_significance(gt, num_resamples=200)
    table = table_configurations(load_runs(root), complexity=False, significance=hook)
    f = table.frame.set_index("key")
    assert f.loc["E", "significant"] is True and f.loc["E", "ci_low"] > 0 and f.loc["E", "p_value"] < 0.05
    assert f.loc["E", "diff_vs_ref"] == pytest.approx(f.loc["E", "avg_mAP"] - f.loc["original", "avg_mAP"], abs=1e-9)
    assert f.loc["E", "diff_vs_ref"] > 0 and f.loc["E", "se_seed"] > 0 and f.loc["E", "se_video"] > 0
    assert (f.loc["E", "n_tested"], f.loc["E", "n_tested_ref"]) == (3, 3)
    assert f.loc["A", "significant"] is False and f.loc["A", "diff_vs_ref"] == pytest.approx(0.0)
    # one seed: no estimate of training noise, so no test, however large the difference
    assert f.loc["B", "significant"] is None and f.loc["B", "n_tested"] == 1 and math.isnan(f.loc["B", "p_value"])
    assert f.loc["original", "significant"] is None and f.loc["C", "significant"] is None
    disp = table.display.set_index("Configuration")
    assert disp.loc[paper.TABLE1_LABELS["E"], "Avg mAP"].endswith(" *")
    assert not disp.loc[paper.TABLE1_LABELS["A"], "Avg mAP"].endswith("*")
    assert not disp.loc[paper.TABLE1_LABELS["B"], "Avg mAP"].endswith("*")
    assert hook.method in table.caption and "Welch t-test" in table.caption and "200 resamples" in table.caption
    assert "Seeds per side (row vs original): A 3 vs 3, E 3 vs 3." in table.caption
    assert "Not tested (original: 3 seeds with detections): B (1 seed), C (0 seeds), D (0 seeds)." in table.caption
    assert "single-seed cells are never tested" in table.caption
    assert "mean ± sample std over the n seeds of each row" in table.caption
    assert "Machine (each run's run.json): cpu, processor not recorded (10 runs)." in table.caption


def test_single_seed_rows_and_no_test_are_stated(detection_store: tuple[Path, pd.DataFrame]) -> None:
    root, gt = detection_store
    runs = load_runs(root)
    heads = table_heads(runs, complexity=False,
                        significance=paired_significance(gt, reference="actionformer", num_resamples=50))
    assert heads.frame["significant"].isna().all() and "*" not in "".join(heads.display["Avg mAP"])
    assert "Not tested (actionformer: 3 seeds with detections): trident (1 seed), decoupled (1 seed)." in heads.caption
    assert "single-seed cells are never tested" in heads.caption and "Seeds per side" not in heads.caption
    untested = table_configurations(runs, complexity=False)
    assert "No significance test was run: no row is marked." in untested.caption
    assert "significant" not in untested.frame.columns
    strict = table_configurations(runs, complexity=False, significance=paired_significance(gt, min_seeds=4))
    assert strict.frame["significant"].isna().all() and "fewer than 4 seeds on either side" in strict.caption


def test_cells_state_their_run_count_and_captions_the_machines(store: Path) -> None:
    runs = load_runs(store)
    seed0 = (runs["name"] == "E-s0").to_numpy()
    runs.loc[seed0, "mAP@0.7"] = math.nan  # a run evaluated without tIoU 0.7
    runs.loc[seed0, "device"] = "cuda:0"
    runs["machine"] = "AMD EPYC, 2 CPUs"
    runs.loc[seed0, "machine"] = "NVIDIA H100 80GB HBM3"
    runs.loc[(runs["name"] == "E-s1").to_numpy(), "machine"] = None  # a run from before run.json named it
    table = table_configurations(runs, complexity=False)
    f, disp = table.frame.set_index("key"), table.display.set_index("Configuration")
    assert f.loc["E", "n_seeds"] == 3 and f.loc["E", "mAP@0.7 n"] == 2 and f.loc["E", "avg_mAP n"] == 3
    assert disp.loc[paper.TABLE1_LABELS["E"], "mAP@0.7"].endswith(" (n=2)")
    assert "(n=" not in disp.loc[paper.TABLE1_LABELS["E"], "Avg mAP"]
    assert ("Machine (each run's run.json): AMD EPYC, 2 CPUs (7 runs); NVIDIA H100 80GB HBM3 (1 run); "
            "cpu, processor not recorded (1 run).") in table.caption
    for other in (table_epochs(runs), table_loss_weight(runs)):
        assert "Machine (each run's run.json): AMD EPYC, 2 CPUs" in other.caption
        assert "mean ± sample std over the n seeds of each row" in other.caption


def test_captions_name_the_precision_of_runs_trained_under_autocast(store: Path) -> None:
    runs = load_runs(store)
    assert set(runs["amp"]) == {"none"}
    tables = (table_configurations(runs, complexity=False), table_epochs(runs), table_loss_weight(runs),
              table_heads(runs, complexity=False))
    assert not any("autocast" in t.caption or "float32" in t.caption for t in tables)  # float32 goes unsaid
    # the machine sentence counts the runs the cells hold: 9, not the older rerun of the original's seed 0
    assert "cpu, processor not recorded (9 runs)." in tables[0].caption
    bf16 = runs.assign(amp="bf16")
    for table in (table_configurations(bf16, complexity=False), table_epochs(bf16), table_loss_weight(bf16),
                  table_heads(bf16, complexity=False)):
        assert "weights; bf16 autocast" in table.caption, table.title
    mixed = runs.copy()
    mixed.loc[mixed["name"] == "E-s1", "amp"] = "bf16"
    caption = table_configurations(mixed, complexity=False).caption
    assert "1 run bf16 autocast, 8 runs float32" in caption  # the 9 runs of its cells: not the older rerun of seed 0
    evals = load_epoch_evals(store)  # Table II of a study: one run evaluated at listed epochs
    assert set(evals["amp"]) == {"none"} and set(evals["device"]) == {"cpu"} and "machine" in evals.columns
    within = table_epochs(runs, evals.assign(amp="bf16"), source="epoch_evals", epochs=[1, 4, 12])
    assert "weights; bf16 autocast" in within.caption  # was missing: epoch evaluations had no amp
    # one run evaluated at 3 epochs is 1 run (was 'Machine: not recorded' without the device column)
    assert "Machine (each run's run.json): cpu, processor not recorded (1 run)." in within.caption
    unrecorded = runs.copy()
    unrecorded.loc[unrecorded["name"] == "E-s1", "amp"] = None
    unrecorded.loc[unrecorded["name"] == "E-s2", "amp"] = "bf16"
    assert "1 run bf16 autocast, 7 runs float32, 1 not recorded" in table_configurations(
        unrecorded, complexity=False).caption
