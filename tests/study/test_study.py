"""The study's plan (which runs, deduplicated), its command line, notebook parameters, reports.

Fast: nothing here trains or starts a kernel (the tiny end-to-end study is in
tests/study/test_notebooks.py, shared with the notebook checks).
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tal_lab.study import params as nbp
from tal_lab.analysis import run_views
from tal_lab.study import reports
from tal_lab.analysis.study_table import StudyTable
from tal_lab.study.params import NotebookParameterError, ablation_setup
from tal_lab.study.plan import (
    LOSS_WEIGHTS, PAPER_TABLE2_EPOCHS, TABLE1_CONFIGURATIONS, RunSpec, StudyPlan, build_plan,
    configuration_types, scaled_epochs, seed_list)
from tal_lab.cli import main as cli_main
from tal_lab.config import load_config
from tal_lab.runs import STANDARD_TIOUS, Run, default_run_name, load_run, run_status
from tal_lab.study.runner import table4_configuration

from fake_runs import write_run
from images import assert_drawn, decode_png, png_dpi

ORIGINAL = ("convTransformer", "identity", "actionformer")


def _by_uses(plan) -> dict[str, RunSpec]:
    return {use: spec for spec in plan.runs for use in spec.uses}


# ------------------------------------------------------------------ the plan

def test_quick_plan_dedupes_the_original_shared_by_tables_i_ii_iii(tmp_path: Path) -> None:
    plan = build_plan(preset="quick", data_root=str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()  # planning generates no data
    assert plan.data_tag == "synthetic-quick" and plan.table1_epochs == 12
    assert plan.table2_epochs == (1, 2, 4, 6, 12) and plan.seeds == (1234567891,)
    # Table I: original, A-E, maxpool (7) + Table III: four more lambdas; Table II adds nothing
    assert len(plan.runs) == 7 + 4
    names = plan.run_names()
    assert len(set(names)) == len(names)
    uses = _by_uses(plan)
    original = uses["I:original"]
    assert original is uses["II"] is uses["III:1"]
    assert original.key[:3] == ORIGINAL and original.epochs == 12 and original.eval_epochs == (1, 2, 4, 6, 12)
    assert [uses[f"III:{w:g}"].loss_weight for w in LOSS_WEIGHTS] == list(LOSS_WEIGHTS)
    assert uses["I:E"].key[:2] == ("sgp", "identity") and uses["I:maxpool"].key[:2] == ("maxpool", "identity")
    assert original.run_name(plan.data_tag) == \
        "synthetic-quick-convTransformer-identity-actionformer-lw1-e12-s1234567891"
    text = plan.describe()
    assert "11 run(s) after removing duplicates" in text and "[I:original; II; III:1]" in text
    assert "best backbone / neck pair of Table I" in text


def test_seeds_repeat_every_run_and_separate_table2_runs_add_lengths(tmp_path: Path) -> None:
    plan = build_plan(preset="quick", data_root=str(tmp_path), seeds=3)
    assert plan.seeds == (1234567891, 1234567892, 1234567893) and len(plan.runs) == 3 * 11
    separate = build_plan(preset="quick", data_root=str(tmp_path), table2_runs="separate")
    uses = _by_uses(separate)
    assert len(separate.runs) == 11 + 4  # epochs 1, 2, 4, 6 are new runs; 12 is Table I's original
    assert uses["II:12"] is uses["I:original"] and uses["II:1"].epochs == 1 and not uses["I:original"].eval_epochs


def test_first_seed_starts_a_replication_on_new_seeds_with_new_run_names(tmp_path: Path) -> None:
    first = build_plan(preset="quick", data_root=str(tmp_path), seeds=3, tables=("I",))
    again = build_plan(preset="quick", data_root=str(tmp_path), seeds=3, first_seed=1234567894, tables=("I",))
    assert again.seeds == (1234567894, 1234567895, 1234567896)
    names = {s.run_name(first.data_tag) for s in first.runs}
    assert len(again.runs) == len(first.runs) and not names & {s.run_name(again.data_tag) for s in again.runs}


def test_table_seeds_give_tables_ii_iii_one_seed_and_tables_i_iv_all(tmp_path: Path) -> None:
    plan = build_plan(preset="quick", data_root=str(tmp_path), seeds=3, table2_runs="separate",
                      table4_pair="original", table_seeds={"II": 1, "III": 1})
    first = plan.seeds[0]
    by_table: dict[str, set[int]] = {}
    for spec in plan.runs:
        for use in spec.uses:
            by_table.setdefault(use.split(":")[0], set()).add(spec.seed)
    assert by_table["I"] == by_table["IV"] == set(plan.seeds)
    assert by_table["II"] == by_table["III"] == {first}
    # 7 configurations and 2 more heads on 3 seeds; 4 Table II lengths and 4 other weights once
    assert len(plan.runs) == 3 * (7 + 2) + 4 + 4
    assert plan.seeds_for("II") == (first,) and plan.seeds_for("I") == plan.seeds
    assert "Table II: 1 seed(s); Table III: 1 seed(s)" in plan.describe()


@pytest.mark.parametrize("table_seeds, message", [
    ({"II": 0}, "table_seeds['II'] must be an integer from 1 to seeds (3), got 0"),
    ({"III": 4}, "table_seeds['III'] must be an integer from 1 to seeds (3), got 4"),
    ({"V": 1}, "table_seeds names Table 'V', which the study does not build"),
])
def test_bad_table_seeds_are_errors_naming_the_table(tmp_path: Path, table_seeds: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_plan(preset="quick", data_root=str(tmp_path), seeds=3, table_seeds=table_seeds)
    assert message in str(info.value)


def test_fixed_table4_pair_adds_the_other_heads_and_shares_the_actionformer_one(tmp_path: Path) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path), tables=("I", "IV"), table4_pair="E")
    uses = _by_uses(plan)
    assert uses["IV:actionformer@E"] is uses["I:E"]
    assert {uses[f"IV:{h}@E"].head for h in ("trident", "decoupled")} == {"trident", "decoupled"}
    assert len(plan.runs) == 7 + 2


def test_paper_preset_follows_the_paper_protocol(tmp_path: Path) -> None:
    plan = build_plan(preset="paper", data_root=str(tmp_path), tables=("I", "II"), configurations=("original", "E"))
    assert plan.data_tag == "synthetic-thumos14" and plan.table1_epochs == 30
    assert plan.table2_epochs == PAPER_TABLE2_EPOCHS
    uses = _by_uses(plan)
    assert uses["II"].epochs == 50 and uses["II"].eval_epochs == (1, 4, 8, 15, 25, 50)
    assert uses["I:original"].epochs == 30 and len(plan.runs) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"tables": ("I", "V")}, "unknown table(s) ['V']"),
    ({"configurations": ("F",)}, "unknown configuration(s) ['F']"),
    ({"preset": "huge"}, "parameter preset='huge' is not valid"),
    ({"table4_pair": "Z"}, "table4_pair 'Z'"),
    ({"dataset": "thumos14", "data_root": ""}, "parameter data_root is required for dataset 'thumos14'"),
    ({"seeds": 0}, "seeds must be a positive integer"),
    ({"seeds": 3, "first_seed": -1}, "first_seed must be a non-negative integer, got -1"),
])
def test_bad_plan_options_are_errors_naming_them(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        build_plan(**kwargs)
    assert message in str(info.value)


def test_epoch_lists_seeds_and_configurations() -> None:
    assert scaled_epochs(12) == (1, 2, 4, 6, 12) and scaled_epochs(2) == (1, 2)
    assert scaled_epochs(50) == PAPER_TABLE2_EPOCHS
    assert seed_list(2, base=7) == (7, 8)
    assert configuration_types("original") == ("convTransformer", "identity")
    assert configuration_types("D") == ("sgp", "fpn") and set(TABLE1_CONFIGURATIONS) >= {"A", "B", "C", "maxpool"}


def _write_spec_run(root: Path, plan: StudyPlan, spec: RunSpec, avg: float, status: str = "finished") -> None:
    """The run ``spec`` of ``plan`` in the store at average mAP ``avg`` (fraction), under the
    name the engine gives its config."""
    cfg = load_config({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": plan.preset}},
                       "model": {"backbone_type": nbp.BACKBONE_CHOICES[spec.backbone], "fpn_type": spec.neck,
                                 "head_type": spec.head},
                       "train_cfg": {"loss_weight": spec.loss_weight}, "opt": {"epochs": spec.epochs},
                       "init_rand_seed": spec.seed})
    assert default_run_name(cfg) == spec.run_name(plan.data_tag)
    write_run(root, spec.run_name(plan.data_tag), cfg, maps=[avg] * 5, status=status)


def test_table4_goes_to_the_best_finished_table1_configuration(tmp_path: Path) -> None:
    plan = build_plan(preset="tiny", data_root=str(tmp_path / "data"), configurations=("original", "B", "D"))
    assert table4_configuration(plan, tmp_path / "runs") == "E"  # nothing finished: the paper's best
    uses = _by_uses(plan)
    _write_spec_run(tmp_path / "runs", plan, uses["I:original"], 0.30)
    _write_spec_run(tmp_path / "runs", plan, uses["I:D"], 0.41)
    _write_spec_run(tmp_path / "runs", plan, uses["I:B"], 0.90, status="running")  # killed after its results
    assert table4_configuration(plan, tmp_path / "runs") == "D"
    assert run_status(tmp_path / "runs" / uses["I:D"].run_name(plan.data_tag)) == "finished"
    assert run_status(tmp_path / "runs" / uses["I:B"].run_name(plan.data_tag)) == "running"
    assert run_status(tmp_path / "nothing") == "missing"


def test_dry_run_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--dry-run", "--preset", "tiny", "--data-root", str(tmp_path / "d"), "--tables", "I,III",
            "--configs", "original,E", "--seeds", "2", "--first-seed", "7"]
    assert cli_main(["study", *args]) == 0
    out = capsys.readouterr().out
    assert "2 seed(s) [7, 8]" in out and "12 run(s) after removing duplicates" in out and "[I:original; III:1]" in out
    assert cli_main(["study", "--dry-run", "--tables", "VI"]) == 1
    assert "unknown table(s) ['VI']" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    assert cli_main(["study", *args, "--table-seeds", "III=1"]) == 0
    out = capsys.readouterr().out
    assert "Table III: 1 seed(s)" in out and "8 run(s) after removing duplicates" in out  # 2 x 2 + 4 weights once
    assert cli_main(["study", *args, "--table-seeds", "III"]) == 1
    assert "--table-seeds: 'III' is not TABLE=N" in capsys.readouterr().err


# ------------------------------------------------------------------ notebook parameters

@pytest.mark.parametrize("change, message", [
    ({"neck": "bifpn"}, "parameter neck='bifpn' is not valid; choose one of identity | fpn"),
    ({"head": "rpn"}, "parameter head='rpn' is not valid"),
    ({"device": "tpu"}, "parameter device='tpu' is not valid; choose auto | cpu | cuda | cuda:N"),
    ({"loss_weight": -1}, "parameter loss_weight=-1 must be a number >= 0"),
    ({"epochs": 0}, "parameter epochs=0 must be an integer >= 1 or None"),
    ({"eval_epochs": "1,2"}, "parameter eval_epochs='1,2' must be a list"),
    ({"overrides": ["opt.epochs"]}, "parameter overrides=['opt.epochs'] must be a list of 'key=value' strings"),
    ({"dataset": "kinetics"}, "parameter dataset='kinetics' is not valid"),
    ({"dataset": "epic", "data_root": "/no/such/folder"}, "parameter data_root='/no/such/folder': no such folder"),
    ({"run_name": "a/b"}, "parameter run_name='a/b' must be a folder name"),
    ({"config_file": "/no/such.yaml"}, "parameter config_file='/no/such.yaml': no such file"),
])
def test_ablation_parameters_are_checked_before_any_data_is_touched(change: dict, message: str,
                                                                      tmp_path: Path) -> None:
    params = {"backbone": "sgp", "neck": "identity", "preset": "tiny", "data_root": str(tmp_path / "data"), **change}
    with pytest.raises(NotebookParameterError) as info:
        ablation_setup(**params)
    assert message in str(info.value)
    assert not (tmp_path / "data").exists()


def test_ablation_setup_builds_the_config_the_study_names(tmp_path: Path) -> None:
    setup = ablation_setup(backbone="conv", neck="fpn", head="actionformer", epochs=3, loss_weight=0.5, seed=7,
                           preset="tiny", data_root=str(tmp_path / "data"), output_root=str(tmp_path / "runs"),
                           eval_epochs=[2, 1, 2], overrides=["opt.learning_rate=0.002"], device="cpu")
    cfg = setup.cfg
    assert (tmp_path / "data" / "config.yaml").is_file()  # generated once
    assert (cfg["model"]["backbone_type"], cfg["model"]["fpn_type"]) == ("conv", "fpn")
    assert cfg["opt"]["epochs"] == 3 and cfg["opt"]["learning_rate"] == 0.002 and cfg["init_rand_seed"] == 7
    assert cfg["train_cfg"]["loss_weight"] == 0.5 and cfg["model"]["train_cfg"]["loss_weight"] == 0.5
    assert cfg["engine"]["eval_epochs"] == [1, 2] and cfg["engine"]["device"] == "cpu"
    assert setup.run_dir == tmp_path / "runs" / "synthetic-tiny-conv-fpn-actionformer-lw0.5-e3-s7"
    assert "backbone conv, neck fpn" in setup.describe()
    with pytest.raises(NotebookParameterError, match="lists epochs after the last one"):
        ablation_setup(backbone="conv", neck="fpn", preset="tiny", data_root=str(tmp_path / "data"),
                       eval_epochs=[5])
    with pytest.raises(NotebookParameterError, match="invalid config: config key 'opt.learning_rate'"):
        ablation_setup(backbone="conv", neck="fpn", preset="tiny", data_root=str(tmp_path / "data"),
                       overrides=["opt.learning_rate=-1"])


def _thumos_folder(root: Path) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "i3d_features").mkdir()
    database = {"video_validation_0000001": {"subset": "Validation", "duration": 10.0, "fps": 30.0,
                                             "annotations": [{"label": "Diving", "label_id": 7,
                                                              "segment": [1.0, 2.0]}]}}
    (root / "annotations" / "thumos14.json").write_text(json.dumps({"database": database}))
    np.save(root / "i3d_features" / "video_validation_0000001.npy", np.zeros((70, 2048), np.float32))
    return root


def test_real_data_gets_actionformer_settings_and_paths_found_in_data_root(tmp_path: Path) -> None:
    root = _thumos_folder(tmp_path / "thumos")
    paper = nbp.base_config("thumos14", str(root), "paper")
    assert paper["dataset_name"] == "thumos" and paper["dataset"]["input_dim"] == 2048
    assert paper["dataset"]["json_file"] == str(root / "annotations" / "thumos14.json")
    assert paper["dataset"]["feat_folder"] == str(root / "i3d_features")
    assert paper["opt"]["epochs"] == 30 and paper["model"]["embd_dim"] == 512 and paper["model"]["n_mha_win_size"] == 19
    quick = nbp.base_config("thumos14", str(root), "quick")
    assert quick["model"]["embd_dim"] == 128 and quick["opt"]["epochs"] == 12  # shrunk for a CPU smoke test
    # an official-style YAML whose paths are relative to ActionFormer's checkout
    yaml_file = tmp_path / "thumos_i3d.yaml"
    yaml_file.write_text("dataset_name: thumos\ndataset: {json_file: ./data/thumos/annotations/thumos14.json, "
                         "feat_folder: ./data/thumos/i3d_features, num_classes: 20, input_dim: 2048, "
                         "feat_stride: 4, num_frames: 16}\n")
    from_yaml = nbp.base_config("thumos14", str(root), "paper", config_file=str(yaml_file))
    assert from_yaml["dataset"]["feat_folder"] == str(root / "i3d_features")
    with pytest.raises(NotebookParameterError, match="config says dataset_name 'thumos'; use dataset='thumos14'"):
        nbp.base_config("epic", str(root), "paper", config_file=str(yaml_file))


def test_activitynet_finds_its_external_scores_in_data_root(tmp_path: Path) -> None:
    root = tmp_path / "anet"
    (root / "annotations").mkdir(parents=True)
    (root / "tsp_features").mkdir()
    database = {"v_1": {"subset": "validation", "duration": 10.0, "fps": 30.0,
                        "annotations": [{"label": "Action", "label_id": 0, "segment": [1.0, 2.0]}]}}
    (root / "annotations" / "anet1.3_tsp_filtered.json").write_text(json.dumps({"database": database}))
    (root / "annotations" / "cuhk_val_simp_share.json").write_text(json.dumps({"results": {}}))
    cfg = nbp.base_config("anet", str(root), "paper")
    assert cfg["test_cfg"]["ext_score_file"] == str(root / "annotations" / "cuhk_val_simp_share.json")
    (root / "annotations" / "cuhk_val_simp_share.json").unlink()
    with pytest.raises(NotebookParameterError, match=r"external score file \(test_cfg.ext_score_file\)"):
        nbp.base_config("anet", str(root), "paper")


def test_paths_filters_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2] / "notebooks")  # JupyterLab's working directory
    assert nbp.project_root() == Path(__file__).resolve().parents[2]
    assert nbp.resolve_path("runs") == nbp.project_root() / "runs"
    assert nbp.resolve_path(str(tmp_path)) == tmp_path
    monkeypatch.chdir(tmp_path)
    assert nbp.project_root() is None and nbp.resolve_path("runs") == tmp_path / "runs"
    assert nbp.data_filter("") is None
    assert nbp.data_filter("synthetic-quick") == {"data_kind": "synthetic", "data_preset": "quick"}
    assert nbp.data_filter("thumos14") == nbp.data_filter("thumos") == {"dataset": "thumos"}
    with pytest.raises(NotebookParameterError, match="data_tag='imagenet'"):
        nbp.data_filter("imagenet")
    assert nbp.output_folder("", tmp_path / "out").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(NotebookParameterError, match="is a file, not a folder"):
        nbp.output_folder(str(tmp_path / "file"), tmp_path)
    with pytest.raises(NotebookParameterError, match="num_threads=-1"):
        nbp.set_num_threads(-1)
    assert nbp.backbone_parameter("convTransformer") == "convTransformer"  # the config name, not the alias
    for name in ("convTransformer", "transformer"):  # the config name and its short alias
        assert nbp.BACKBONE_CHOICES[nbp.check_choice("backbone", name, nbp.BACKBONE_CHOICES)] == "convTransformer"


# ------------------------------------------------------------------ reports and run views

def _figure() -> Figure:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def test_figures_are_saved_as_png_and_svg(tmp_path: Path) -> None:
    paths = reports.save_figure(_figure(), tmp_path / "sub" / "curve")
    assert sorted(paths) == ["png", "svg"] and paths["png"] == tmp_path / "sub" / "curve.png"
    assert png_dpi(paths["png"]) == pytest.approx((reports.FIGURE_DPI, reports.FIGURE_DPI), abs=0.05)
    pixels = decode_png(paths["png"])
    assert_drawn(pixels, paths["png"])
    assert pixels.shape[0] < 2 * reports.FIGURE_DPI and pixels.shape[1] < 3 * reports.FIGURE_DPI  # tight: 3 x 2 in
    svg = ElementTree.parse(paths["svg"]).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.find(".//{http://www.w3.org/2000/svg}path") is not None
    with pytest.raises(ValueError, match="has no axes"):
        reports.save_figure(Figure(), tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown figure format"):
        reports.save_figure(_figure(), tmp_path / "x", formats=("gif",))


def test_index_links_tables_figures_notebooks_and_runs(tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    frame = pd.DataFrame({"configuration": ["E"], "avg_mAP": [50.0]})
    StudyTable("table1_configurations", "Table I", frame, "On the synthetic 'tiny' benchmark.").export(
        tmp_path / "tables")
    reports.save_figure(_figure(), tmp_path / "figures" / "diversity_overview")
    (tmp_path / "_work" / "notebooks").mkdir(parents=True)
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), str(tmp_path / "_work" / "notebooks" / "tables.ipynb"))
    (tmp_path / "runs" / "run-a").mkdir(parents=True)
    index = reports.export_reports(tmp_path, plan_text="study plan: x", failed={"run-b": "ValueError: boom"})
    html = index.read_text()
    assert "<td>E</td><td>50.0</td>" in html and "On the synthetic &#x27;tiny&#x27; benchmark." in html
    # wide tables scroll sideways in their own box instead of running off the page
    assert "<div class='table-scroll'><table>" in html and ".table-scroll{overflow-x:auto" in html
    for link in ("tables/table1_configurations.tex", "figures/diversity_overview.png",
                 "figures/diversity_overview.svg", "notebooks/tables.html"):
        assert link in html and (tmp_path / link).is_file()
    assert "run-a" in html and "run-b: ValueError: boom" in html and "study plan: x" in html
    readme = (tmp_path / "README.md").read_text()
    assert "**Table I.** On the synthetic 'tiny' benchmark." in readme and "![diversity_overview]" in readme


def test_the_index_leaves_out_what_an_earlier_study_left_in_the_folder(tmp_path: Path) -> None:
    # A fresh clone's reports/ holds the committed sample: timelines of runs this study does not draw,
    # and reports of runs (other seeds) outside its plan. The index showed them as this study's.
    import os
    import time

    reports.save_figure(_figure(), tmp_path / "figures" / "timelines_old-run")
    StudyTable("table3_loss_weight", "Table III", pd.DataFrame({"x": [1]}), "old").export(tmp_path / "tables")
    for path in [*(tmp_path / "figures").iterdir(), *(tmp_path / "tables").iterdir()]:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    (tmp_path / "runs" / "old-run").mkdir(parents=True)
    (tmp_path / "runs" / "this-run").mkdir(parents=True)
    since = time.time()
    reports.save_figure(_figure(), tmp_path / "figures" / "timelines_this-run")
    StudyTable("table1_configurations", "Table I", pd.DataFrame({"x": [2]}), "new").export(tmp_path / "tables")
    html = reports.write_index(tmp_path, since=since, run_names=["this-run"]).read_text()
    assert "timelines_this-run" in html and "this-run:" in html and "Table I." in html
    assert "timelines_old-run" not in html and "old-run:" not in html and "Table III." not in html
    assert "Not listed: 1 table, 1 figure, 1 run report in this folder from an earlier study" in html
    readme = (tmp_path / "README.md").read_text()
    assert "timelines_old-run" not in readme and "Not listed: 1 table, 1 figure, 1 run report" in readme
    everything = reports.write_index(tmp_path).read_text()  # no filter: every file, nothing said left out
    assert "timelines_old-run" in everything and "old-run:" in everything and "Not listed" not in everything


FINAL_MAPS = [0.5, 0.4, 0.3, 0.3, 0.25]  # average 0.35


def _finished_run(root: Path) -> Run:
    """An sgp run of 2 epochs (2 iterations each) on the tiny synthetic benchmark, evaluated at
    epoch 1 (20 % at every tIoU) and at the end (FINAL_MAPS)."""
    cfg = load_config({"dataset_name": "synthetic", "dataset": {"synthetic": {"preset": "tiny"}},
                       "model": {"backbone_type": "sgp"}, "opt": {"epochs": 2, "warmup_epochs": 0},
                       "init_rand_seed": 0})
    return load_run(write_run(root, "r", cfg, maps=FINAL_MAPS, epoch_maps={1: [0.2] * 5}))


def test_training_curve_draws_each_loss_and_the_map_of_each_evaluation(tmp_path: Path) -> None:
    ax_loss, ax_map = run_views.plot_training_curve(_finished_run(tmp_path)).get_axes()
    assert (ax_loss.get_title(), ax_loss.get_xlabel(), ax_loss.get_ylabel()) == ("training loss", "epoch", "loss")
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["final_loss", "cls_loss", "reg_loss"]
    raw_final, smoothed_final = ax_loss.lines[:2]  # each loss: raw, then smoothed
    assert len(ax_loss.lines) == 6 and list(raw_final.get_xdata()) == [0.5, 1.0, 1.5, 2.0]  # fractional epochs
    assert list(raw_final.get_ydata()) == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
    assert list(smoothed_final.get_ydata()) == pytest.approx([1, 3 / 4, 11 / 18, 25 / 48])  # running mean
    assert (ax_map.get_title(), ax_map.get_ylabel()) == ("mAP at evaluated epochs", "mAP (%)")
    assert [line.get_label() for line in ax_map.lines] == [*(f"mAP@{t:g}" for t in STANDARD_TIOUS), "avg_mAP"]
    assert all(list(line.get_xdata()) == [1, 2] for line in ax_map.lines)
    assert list(ax_map.lines[-1].get_ydata()) == pytest.approx([20.0, 35.0])
    # one epoch axis, whole epochs: a run evaluated only at its end lines up with its loss curve
    assert ax_map.get_xlim() == ax_loss.get_xlim() and ax_loss.get_xlim()[0] < 0.5
    ticks = [t for t in ax_map.get_xticks() if ax_map.get_xlim()[0] <= t <= ax_map.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_run_views_curve_table_summary_and_choices(tmp_path: Path) -> None:
    run = _finished_run(tmp_path)
    table = run_views.map_table(run)
    assert table.frame.columns.tolist() == ["run", *(f"mAP@{t:g}" for t in STANDARD_TIOUS), "avg_mAP"]
    assert table.frame["avg_mAP"].item() == pytest.approx(35.0) and "synthetic 'tiny'" in table.caption
    assert "sgp / identity / actionformer" in table.caption and "ema weights of epoch 2" in table.caption
    assert run_views.run_summary(run)["mAP@0.5"] == pytest.approx(30.0)
    assert "autocast" not in table.caption and run_views.run_summary(run)["amp"] == "none"
    info = json.loads((run.path / "run.json").read_text())
    (run.path / "run.json").write_text(json.dumps({**info, "amp": "bf16"}))
    bf16 = load_run(run.path)
    assert "seed 0, bf16 autocast, ema weights of epoch 2" in run_views.map_table(bf16).caption
    assert run_views.run_summary(bf16)["amp"] == "bf16"
    gt = pd.DataFrame({"video-id": ["b", "a", "a", "c", "c"], "t-start": 0.0, "t-end": 1.0, "label": 0})
    assert run_views.busiest_videos(gt, 2) == ["a", "c"]
    probed = pd.DataFrame({"run": ["x", "x", "y"], "epoch": [1, 3, 2]})
    assert run_views.at_last_epoch(probed)["epoch"].tolist() == [3, 2]
    t1 = pd.DataFrame({"backbone": ["convTransformer", "sgp", "conv"], "neck": ["identity", "fpn", "fpn"],
                       "avg_mAP": [40.0, 45.0, np.nan]})
    assert run_views.best_pair(t1) == ("sgp", "fpn")
    assert run_views.best_pair(t1.assign(avg_mAP=np.nan)) == ("sgp", "identity")
    with pytest.raises(ValueError, match="split='val' is not valid"):
        run_views.split_ground_truth({"dataset": {"json_file": None}}, "val")


def test_status_line_counts_runs_and_estimates_the_time_left() -> None:
    from tal_lab.study.runner import status_line

    assert status_line(0, 2, 0, 9, [], 2) == "study: 0 done, 2 running, 0 failed, 9 queued"
    # 2 runs of 100 s so far, 1 running (half done) and 3 queued on 2 jobs: (3 + 0.5) * 100 / 2
    assert status_line(2, 1, 1, 3, [100.0, 100.0], 2) == (
        "study: 2 done, 1 running, 1 failed, 3 queued; about 2 min 55 s of training left")
    assert status_line(5, 0, 0, 0, [60.0], 2) == "study: 5 done, 0 running, 0 failed, 0 queued"
