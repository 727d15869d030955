"""The notebooks, executed with papermill at the tiny preset, and the files they declare.

One tiny study is the shared fixture (it is also the end-to-end test of ``tal-lab study``):
configuration E is trained in-process beforehand, so the study must skip it; the original
configuration trains through ``run_ablation.ipynb`` (evaluated at epochs 1 and 2 too, for Table II);
then ``tables``, ``timelines``, ``feature_diversity`` and ``explore`` run on that store and the
reports are exported. Every test below checks the files one notebook promises.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator
from xml.etree import ElementTree

import nbformat
import pandas as pd
import ipywidgets
import papermill
import pytest
from IPython.core.formatters import DisplayFormatter
from jupyter_client.kernelspec import KernelSpecManager
from matplotlib.figure import Figure

from tal_lab.analysis.figure import new_figure
from tal_lab.analysis.run_views import PANEL_TEXT, RunExplorer
from tal_lab.engine import train
from tal_lab.engine.api import finished_run_differences
from tal_lab.study.params import ablation_setup
from tal_lab.runs import default_run_name, load_run
from tal_lab.study.plan import StudyPlan, build_plan
from tal_lab.study.reports import FIGURE_DPI
from tal_lab.study.runner import StudyOutcome, run_study

from images import assert_drawn, decode_png, png_dpi
from tiny import FAST_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAMES = ("run_ablation", "timelines", "feature_diversity", "tables", "explore")
# A model small enough for seconds per run: every part of each configuration, width 16.
FAST = [*FAST_OVERRIDES, "model.sgp_mlp_dim=32", "test_cfg.pre_nms_topk=200", "test_cfg.max_seg_num=50",
        "engine.progress=false"]
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture(scope="module")
def kernel_env() -> Iterator[None]:
    """Kernels import this checkout's tal_lab wherever they start, with one torch thread each
    (tiny models gain nothing from threads, and a busy 2-core machine makes them slower)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        mp.setenv("OMP_NUM_THREADS", "1")
        yield


class Study:
    def __init__(self, plan: StudyPlan, outcome: StudyOutcome, runs: Path, reports: Path, log: list[str]) -> None:
        self.plan, self.outcome, self.runs, self.reports, self.log = plan, outcome, runs, reports, log

    def name(self, configuration: str) -> str:
        return next(s.run_name(self.plan.data_tag) for s in self.plan.runs if f"I:{configuration}" in s.uses)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, kernel_env: None) -> Study:
    tmp = tmp_path_factory.mktemp("study")
    plan = build_plan(preset="tiny", data_root=str(tmp / "data"), tables=("I", "II"), configurations=("original", "E"))
    # E first, in-process: a finished run the study must skip (and its name must be the engine's).
    setup = ablation_setup(backbone="sgp", neck="identity", preset="tiny", data_root=str(tmp / "data"),
                           output_root=str(tmp / "runs"), overrides=FAST)
    assert setup.run_name == default_run_name(setup.cfg) == next(
        s.run_name(plan.data_tag) for s in plan.runs if "I:E" in s.uses)
    train(setup.cfg, setup.output_root, setup.run_name, progress=False)
    log: list[str] = []
    outcome = run_study(plan, output_root=tmp / "runs", reports_dir=tmp / "reports", jobs=2, overrides=FAST,
                        log=log.append)
    return Study(plan, outcome, tmp / "runs", tmp / "reports", log)


def test_a_finished_run_trained_with_another_config_is_refused_not_skipped(study: Study, tmp_path: Path) -> None:
    """A study with ``--set engine.amp=bf16`` on a store of float32 runs would otherwise skip them
    as finished and show their numbers as its own."""
    original = study.runs / study.name("original")
    setup = ablation_setup(backbone="convTransformer", neck="identity", preset="tiny",
                           data_root=str(study.plan.data_root), output_root=str(study.runs), overrides=FAST)
    assert finished_run_differences(original, setup.cfg) == []  # evaluated at fewer epochs: the same run
    bf16 = ablation_setup(backbone="convTransformer", neck="identity", preset="tiny",
                          data_root=str(study.plan.data_root), output_root=str(study.runs),
                          overrides=[*FAST, "engine.amp=bf16"])
    assert finished_run_differences(original, bf16.cfg) == ["engine.amp: 'none' -> 'bf16'"]
    before = sorted(p.name for p in study.runs.iterdir())
    with pytest.raises(ValueError) as info:
        run_study(study.plan, output_root=study.runs, reports_dir=tmp_path / "reports", jobs=2,
                  overrides=[*FAST, "engine.amp=bf16"], log=lambda line: None)
    message = str(info.value)
    assert message.startswith(f"2 finished run(s) in {study.runs} were trained with another config")
    assert f"{study.name('original')}: engine.amp: 'none' -> 'bf16'" in message
    assert f"{study.name('E')}: engine.amp: 'none' -> 'bf16'" in message and "--output-root" in message
    assert sorted(p.name for p in study.runs.iterdir()) == before and not (tmp_path / "reports").exists()


def _errors(path: Path) -> list[str]:
    nb = nbformat.read(str(path), as_version=4)
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def _png(path: Path) -> None:
    """A figure the study saved: a drawn PNG at the report resolution, and the same figure as SVG."""
    assert path.is_file(), f"missing {path}"
    assert png_dpi(path) == pytest.approx((FIGURE_DPI, FIGURE_DPI), abs=0.05), path
    pixels = decode_png(path)
    assert_drawn(pixels, path)
    svg = ElementTree.parse(path.with_suffix(".svg")).getroot()
    assert svg.tag == f"{{{SVG_NS}}}svg" and len(svg.findall(f".//{{{SVG_NS}}}path")) > 10, f"{path}: empty SVG"
    # the same size in both: SVG points (1/72 in) at the PNG's dpi, as pixels (Agg truncates)
    svg_px = [float(svg.attrib[key].removesuffix("pt")) / 72 * FIGURE_DPI for key in ("height", "width")]
    assert list(pixels.shape[:2]) == pytest.approx(svg_px, abs=1.0), (path, pixels.shape, svg_px)


def _shows_every_cell(page: Path, notebook: Path) -> None:
    """An exported HTML page holds every cell of its executed notebook (nbconvert's lab template)."""
    cells = nbformat.read(str(notebook), as_version=4).cells
    assert page.read_text().count('class="jp-Cell ') == len(cells), (page, len(cells))


# ------------------------------------------------------------------ the committed notebooks

@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_committed_clean_with_a_parsable_parameters_cell(name: str) -> None:
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    nbformat.validate(nb)
    # the kernelspec of the kernel JupyterLab starts for it: with another display name, JupyterLab
    # rewrites it on opening, and every executed copy of the study opens marked as modified
    installed = KernelSpecManager().get_kernel_spec("python3")
    assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": installed.display_name,
                                         "language": installed.language}
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "committed with outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0]
    lines = [line for line in tagged[0].source.splitlines() if line.strip()]
    params = papermill.translators.PythonTranslator.inspect(tagged[0])
    assert [p.name for p in params] == [line.split("=")[0].strip() for line in lines]
    assert all(p.help for p in params), "every parameter needs a help comment"
    # the cell after the parameters builds / checks them with tal_lab.study.params
    assert "tal_lab.study.params" in code[1].source or "notebook_params" in code[1].source
    for cell in code:
        assert not re.search(r"^\s*(def |class |import sys|sys\.path)", cell.source, re.M), cell.source


@pytest.mark.parametrize("name", ("timelines", "feature_diversity", "tables", "explore"))
def test_an_analysis_notebook_with_its_defaults_writes_only_git_ignored_folders(name: str) -> None:
    """Only ``tal-lab study`` writes the tracked reports/; a notebook run by hand writes outputs/."""
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params = {p.name: p.default for p in papermill.translators.PythonTranslator.inspect(cell)}
    folder = params["output_dir"].strip("\"'")
    assert folder.startswith("outputs/"), folder
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/any_figure.png"], cwd=ROOT)
    assert ignored.returncode == 0, f"{folder} is not ignored by git"
    assert params["runs_root"].strip("\"'") == "runs"  # the one run store of every command


# ------------------------------------------------------------------ bad parameters fail first

@pytest.mark.parametrize("params, message", [
    ({"backbone": "lstm"}, "parameter backbone='lstm' is not valid; choose one of convTransformer | conv | sgp | maxpool | transformer"),
    ({"dataset": "thumos14"}, "parameter data_root is required for dataset 'thumos14'"),
])
def test_a_bad_parameter_fails_in_the_first_cells_with_a_clear_message(
        params: dict[str, Any], message: str, tmp_path: Path, kernel_env: None) -> None:
    out = tmp_path / "failed.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(NOTEBOOKS / "run_ablation.ipynb"), str(out), kernel_name="python3",
                                   parameters={**params, "output_root": str(tmp_path / "runs")}, cwd=str(tmp_path),
                                   progress_bar=False)
    assert info.value.ename == "NotebookParameterError"
    assert message in info.value.evalue
    nb = nbformat.read(str(out), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.outputs)]
    # cells: parameters, injected parameters, the config cell (fails), nothing after it runs
    assert failed == [2] and "ablation_setup(" in code[2].source
    assert all(c.execution_count is None for c in code[3:])
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ the tiny study end to end

def test_the_study_trains_what_is_missing_and_skips_finished_runs(study: Study) -> None:
    assert study.outcome.ok, study.outcome.failed
    assert study.outcome.trained == [study.name("original")]
    assert study.outcome.skipped == [study.name("E")]
    assert any("finished earlier, skipped" in line for line in study.log)
    for notebook in study.outcome.notebooks:
        assert notebook.is_file() and not _errors(notebook), notebook


def test_run_ablation_records_the_run_and_writes_its_report(study: Study) -> None:
    name = study.name("original")
    run = load_run(study.runs / name)
    assert run.info["status"] == "finished" and run.config["engine"]["eval_epochs"] == [1, 2]
    assert run.config["model"]["embd_dim"] == 16  # the study's --set reached the notebook
    report = study.reports / "runs" / name
    for figure in ("training_curve", "timelines"):
        _png(report / f"{figure}.png")
    table = pd.read_csv(report / "map.csv")
    assert table.columns.tolist() == ["run", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "avg_mAP"]
    assert table["run"].tolist() == [name] and table["avg_mAP"].between(0, 100).all()
    assert (report / "map.md").read_text().startswith("**mAP.**") and (report / "map.tex").is_file()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["run"] == name and summary["avg_mAP"] == pytest.approx(100 * run.results["average_mAP"])
    _shows_every_cell(report / "run_ablation.html", study.reports / "_work" / "runs" / f"{name}.ipynb")


def test_tables_notebook_writes_tables_with_paper_columns_and_captions(study: Study) -> None:
    tables = study.reports / "tables"
    t1 = pd.read_csv(tables / "table1_configurations.csv")
    assert t1["key"].tolist() == ["original", "A", "B", "C", "D", "E"]
    assert dict(zip(t1["key"], t1["n_seeds"])) == {"original": 1, "A": 0, "B": 0, "C": 0, "D": 0, "E": 1}
    for column in ("mAP@0.3", "mAP@0.7", "avg_mAP", "paper avg_mAP", "params_M", "GFLOPs"):
        assert column in t1.columns
    assert not [c for c in t1.columns if c.startswith("diff ")]  # synthetic vs THUMOS14: no difference
    assert t1.loc[t1["key"] == "E", "paper avg_mAP"].item() == pytest.approx(67.44)
    assert t1.loc[t1["key"] == "E", "params_M"].item() > 0
    t2 = pd.read_csv(tables / "table2_epochs.csv")
    evaluated = t2[t2["n_seeds"] > 0]["epoch"].tolist()
    assert evaluated == [1, 2, 3]  # the listed epochs during the run, and the last (2 epochs + 1 warm-up)
    for stem in ("table1_configurations", "table2_epochs"):
        text = (tables / f"{stem}.md").read_text()
        assert "synthetic" in text and "THUMOS14" in text  # the caption states the data
        assert (tables / f"{stem}.tex").read_text().count(r"\begin{table}") == 1
    assert not (tables / "table3_loss_weight.csv").exists()  # only the tables asked for


def test_timelines_notebook_draws_one_figure_per_run(study: Study) -> None:
    figures = study.reports / "figures"
    for configuration in ("original", "E"):
        _png(figures / f"timelines_{study.name(configuration)}.png")
    counts = pd.read_csv(figures / "timelines_counts.csv")
    assert counts.columns.tolist() == ["video-id", "matched", "false_positive", "missed", "run"]
    assert set(counts["run"]) == {study.name("original"), study.name("E")}
    assert (counts[["matched", "false_positive", "missed"]] >= 0).all().all()


def test_feature_diversity_notebook_compares_backbones_levels_and_epochs(study: Study) -> None:
    figures = study.reports / "figures"
    for figure in ("overview", "by_layer", "over_epochs", "cosine_to_mean"):
        _png(figures / f"diversity_{figure}.png")
    metrics = pd.read_csv(figures / "diversity_metrics.csv")
    assert set(metrics["backbone"]) == {"convTransformer", "sgp"}
    assert set(metrics[metrics["backbone"] == "convTransformer"]["epoch"]) == {1, 2, 3}  # every saved checkpoint
    backbone = metrics[metrics["stage"] == "backbone"]
    assert sorted(backbone["level"].dropna().unique().astype(int)) == [0, 1, 2, 3, 4, 5]
    assert backbone["mean_cosine"].between(-1, 1).all() and (backbone["effective_rank"] >= 1 - 1e-6).all()


def test_explore_notebook_builds_widgets_and_renders_a_static_state(study: Study) -> None:
    figures = study.reports / "figures"
    for figure in ("explore_timeline", "explore_class_ap"):
        _png(figures / f"{figure}.png")
    per_class = pd.read_csv(figures / "explore_class_ap.csv")
    assert "AP@0.50" in per_class.columns and "num_gt" in per_class.columns
    nb = nbformat.read(str(study.reports / "_work" / "notebooks" / "explore.ipynb"), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_reports_index_links_every_table_figure_and_notebook(study: Study) -> None:
    index = (study.reports / "index.html").read_text()
    readme = (study.reports / "README.md").read_text()
    assert study.outcome.index == study.reports / "index.html"
    for link in ("tables/table1_configurations.csv", "tables/table2_epochs.tex", "figures/diversity_overview.png",
                 "figures/explore_timeline.svg", "notebooks/tables.html", "notebooks/feature_diversity.html",
                 f"runs/{study.name('original')}/run_ablation.html"):
        assert link in index, link
        assert (study.reports / link).is_file()
    assert "<table>" in index and "Table I" in index
    assert "## Tables" in readme and "**Table I.**" in readme and "](figures/timelines_" in readme
    for page in (study.reports / "notebooks").glob("*.html"):
        _shows_every_cell(page, study.reports / "_work" / "notebooks" / f"{page.stem}.ipynb")


def test_explorer_state_changes_re_render_with_every_class_in_the_label_space(study: Study) -> None:
    explorer = RunExplorer(study.runs, score_threshold=0.0, num_videos=2)
    assert explorer.run.name in (study.name("original"), study.name("E")) and len(explorer.state["videos"]) == 2
    timeline, class_ap, per_class = explorer.render()  # all detections: classes without ground truth too
    assert len(timeline.get_axes()) == 2 and per_class["num_gt"].sum() == len(explorer.gt)
    shown = per_class.index[per_class["num_gt"] > 0][0]
    explorer.state.update(classes=[shown], tiou=0.3, videos=explorer.video_ids[:1])
    assert explorer.render()[2].index.tolist() == [shown]
    panel = explorer.widgets()
    assert isinstance(panel, ipywidgets.VBox) and "score" in explorer.describe()
    # an executed copy opened without its kernel shows the plain text: a sentence, not the VBox repr
    bundle, _ = DisplayFormatter().format(panel)
    assert bundle["text/plain"] == PANEL_TEXT and "application/vnd.jupyter.widget-view+json" in bundle
    with pytest.raises(ValueError, match="classes \\['NoSuchClass'\\] are unknown"):
        RunExplorer(study.runs, classes=["NoSuchClass"])
    with pytest.raises(ValueError, match="run 'nope' is not a finished run"):
        RunExplorer(study.runs, run="nope")


# ------------------------------------------------------------------ what a notebook displays

# Inline images each executed notebook must show at the least (its plotting cells; the explorer
# shows its two figures once in the widget's output area and once in the static state).
MIN_INLINE_IMAGES = {"run_ablation": 2, "timelines": 2, "feature_diversity": 4, "explore": 2, "tables": 0}


def _inline_images(path: Path) -> tuple[list[bytes], list[str]]:
    """The PNGs an executed notebook displays, and any figure shown only as its text repr."""
    nb = nbformat.read(str(path), as_version=4)
    images, text_only = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                images.append(base64.b64decode(data["image/png"]))
            elif str(data.get("text/plain", "")).startswith("<Figure size"):
                text_only.append(data["text/plain"])
            text = output.get("text", "")
            if "<Figure size" in text:
                text_only.append(text)
    return images, text_only


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_executed_notebook_shows_every_figure_as_an_image(study: Study, name: str) -> None:
    work = study.reports / "_work"
    executed = sorted((work / "runs").glob("*.ipynb")) if name == "run_ablation" else [work / "notebooks" / f"{name}.ipynb"]
    assert executed and all(p.is_file() for p in executed), executed
    for path in executed:
        images, text_only = _inline_images(path)
        assert not text_only, f"{path}: figures shown as text only: {text_only[:2]}"
        assert len(images) >= MIN_INLINE_IMAGES[name], f"{path}: {len(images)} inline images"
        for data in images:
            pixels = decode_png(data)
            assert pixels.shape[0] >= 100 and pixels.shape[1] >= 200, (path, pixels.shape)
            assert_drawn(pixels, path)


def test_exported_html_reports_show_figures_as_images(study: Study) -> None:
    pages = [*(study.reports / "notebooks").glob("*.html"), *(study.reports / "runs").glob("*/run_ablation.html")]
    assert len(pages) == len(MIN_INLINE_IMAGES) - 1 + len(study.outcome.trained)
    for page in pages:
        html = page.read_text()
        assert "&lt;Figure size" not in html, page
        minimum = MIN_INLINE_IMAGES[page.stem if page.stem in MIN_INLINE_IMAGES else "run_ablation"]
        assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) >= minimum, page


def test_library_figures_render_as_png_for_ipython_and_stay_plain_figures() -> None:
    fig = new_figure(figsize=(4, 3))
    assert DisplayFormatter().format(fig)[0].get("image/png") is None  # no axes: nothing to draw
    ax = fig.subplots()
    ax.plot([0, 1], [1, 0])
    formatted, _ = DisplayFormatter().format(fig)
    pixels = decode_png(formatted["image/png"])
    height, width = pixels.shape[:2]
    assert isinstance(fig, Figure) and 300 < width <= 440 and 200 < height <= 330  # 100 dpi, tight bbox
    assert_drawn(pixels, "the inline PNG")
