"""JupyterLab in a real browser: ``notebooks/explore.ipynb`` shows its figures and its widgets redraw.

A tiny run is trained into a temporary run store, a copy of the explore notebook with
``runs_root`` pointing at it is opened in ``jupyter lab`` (a subprocess on a free port) through
Playwright's Chromium (the system ``chromium``), and all cells are run from the Run menu. The test
checks what a person sees: the images in the output areas are drawn (not blank), no traceback and
no figure shown as ``<Figure size ...>`` text, and moving the score slider redraws the figure. The
same notebook executed as ``tal-lab study`` executes it opens unmodified, with its stored figures.
Screenshots go to ``tests/study/_screenshots/`` (git-ignored).

Without chromium or playwright the test is skipped, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tiny import FAST_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "_screenshots"
NOTEBOOK = "explore_browser.ipynb"
EXECUTED = "explore_executed.ipynb"  # the same notebook run by the study's runner (papermill), as tal-lab study leaves it
# The tiny run of tests/study/test_notebooks.py: every part of the configuration, width 16.
FAST = [*FAST_OVERRIDES, "model.sgp_mlp_dim=32", "test_cfg.pre_nms_topk=200", "test_cfg.max_seg_num=50",
        "engine.progress=false"]
# JupyterLab settings of the test's own settings folder: every cell in the DOM (no windowing, so
# each output is rendered whether scrolled into view or not), the notebook's kernel started on
# opening (no "Select Kernel" dialog), no news / update notifications.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none", "autoStartDefaultKernel": true}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}
OUTPUT_IMG = ".jp-OutputArea-output img"
MIN_STD = 10.0  # pixel standard deviation of a drawn figure (a blank or single-colour image: ~0)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        _unavailable("the browser test needs the system chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the browser test needs playwright (pip install playwright)")
    return str(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _notebook_with_store(tmp: Path) -> Path:
    """A tiny finished run under ``tmp/runs``, a copy of explore.ipynb that reads it, and that copy
    executed as the study executes its notebooks."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from tal_lab.engine import train
    from tal_lab.study.params import ablation_setup

    setup = ablation_setup(backbone="sgp", neck="identity", preset="tiny", data_root=str(tmp / "data"),
                           output_root=str(tmp / "runs"), overrides=FAST)
    train(setup.cfg, setup.output_root, setup.run_name, progress=False)
    nb = load_notebook_node(str(ROOT / "notebooks" / "explore.ipynb"))  # papermill's normalised form
    nb = parameterize_notebook(nb, {"runs_root": str(tmp / "runs"), "output_dir": str(tmp / "figures"),
                                    "num_videos": 2})
    for cell in nb.cells:  # papermill's bookkeeping: not what a person opens
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    path = tmp / NOTEBOOK
    nbformat.write(nb, str(path))
    from tal_lab.study.reports import execute_notebook

    execute_notebook(path, tmp / EXECUTED, {}, tmp)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:
    """``jupyter lab`` serving a folder with the notebook and its run store; yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    _notebook_with_store(tmp)
    settings = tmp / "lab-settings"
    for name, text in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"), "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime")}
    port = _free_port()
    log = open(tmp / "jupyter.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", "--ServerApp.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={tmp}", "--ServerApp.disable_check_xsrf=True",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in 60 s:\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its kernels: its own process group
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()


def _pixel_std(png: bytes) -> float:
    import io

    from PIL import Image, ImageStat

    return max(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("RGB")).stddev)


def _pixel_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference (0-255) of two screenshots, the second resized to the first."""
    import io

    from PIL import Image, ImageChops, ImageStat

    first = Image.open(io.BytesIO(a)).convert("L")
    second = Image.open(io.BytesIO(b)).convert("L").resize(first.size)
    return ImageStat.Stat(ImageChops.difference(first, second)).mean[0]


def _wait_for_all_cells_run(page: Any, timeout_s: float = 90) -> None:
    """Every code cell shows an execution count ([n]:, not [ ]: or [*]:) and the kernel is idle."""
    deadline = time.monotonic() + timeout_s
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status") \
            if page.locator(".jp-Notebook-ExecutionIndicator").count() else "idle"
        if prompts and all(re.fullmatch(r"\s*\[\d+\]:\s*", p) for p in prompts) and status == "idle":
            return
        time.sleep(0.5)
    raise AssertionError(f"cells did not finish running in {timeout_s:.0f} s: prompts {prompts}")


def _errors_shown(page: Any) -> list[str]:
    texts = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    texts += page.locator(".jp-RenderedText").all_inner_texts()
    texts += page.locator(".jp-OutputArea-output").all_inner_texts()
    bad = ("Traceback", "<Figure size", "Error displaying widget")
    return sorted({t[:500] for t in texts if any(b in t for b in bad)})


@contextlib.contextmanager
def _notebook_page(lab: str, notebook: str, prefix: str) -> Iterator[Any]:
    """Chromium showing ``notebook`` in JupyterLab with its kernel started and idle; screenshots
    named ``prefix*`` of an earlier run are removed, and a failure leaves ``prefix_failure.png``."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob(f"{prefix}_*.png"):
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{lab}/lab/tree/{notebook}?reset")  # ?reset: not the tabs another test left open
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
            page.wait_for_timeout(1000)
            dialog = page.locator(".jp-Dialog")
            if dialog.count():  # a kernel choice despite the settings: the notebook's own (preselected)
                dialog.get_by_role("button", name="Select").click()
            # the kernel has started (its name is in the toolbar, its status idle)
            page.wait_for_function(
                "() => { const k = document.querySelector('.jp-NotebookPanel .jp-KernelStatus, "
                ".jp-Notebook-ExecutionIndicator'); return k && k.getAttribute('data-status') === 'idle'; }")
            yield page
        except BaseException:
            if page is not None:  # what the page showed when the test failed
                page.screenshot(path=str(SCREENSHOTS / f"{prefix}_failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def test_explore_notebook_in_jupyterlab_shows_figures_and_redraws_on_a_widget_change(lab: str) -> None:
    with _notebook_page(lab, NOTEBOOK, "explore") as page:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        _wait_for_all_cells_run(page)
        # images arrive with the outputs: the widget's figures and the static state's two
        page.wait_for_function(
            f"() => [...document.querySelectorAll('{OUTPUT_IMG}')].filter(i => i.complete && "
            "i.naturalWidth > 100).length >= 2", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "explore_after_run_all.png"), full_page=True)

        errors = _errors_shown(page)
        assert not errors, f"the notebook shows errors or figures as text: {errors}"
        images = page.locator(OUTPUT_IMG)
        assert images.count() >= 2, f"{images.count()} images in the output areas"
        for i in range(images.count()):
            image = images.nth(i)
            width = image.evaluate("i => i.naturalWidth")
            assert width > 100, f"image {i} is {width} px wide"
            shot = image.screenshot(path=str(SCREENSHOTS / f"explore_image_{i}.png"))
            assert _pixel_std(shot) > MIN_STD, f"image {i} looks blank (pixel std {_pixel_std(shot):.1f})"

        # the widget's timeline: the first image in the explorer's Output widget
        widget_image = page.locator(f".jupyter-widgets-output-area {OUTPUT_IMG}, "
                                    f".widget-output {OUTPUT_IMG}").first
        widget_image.wait_for()
        before_src = widget_image.get_attribute("src")
        before = widget_image.screenshot(path=str(SCREENSHOTS / "explore_widget_before.png"))
        slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="score"))
        readout = slider.locator(".widget-readout").first
        assert readout.inner_text().strip() == "0.30", readout.inner_text()
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("0.00")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([sel, src]) => { const i = document.querySelector(sel); return i && i.complete && "
            "i.naturalWidth > 100 && i.getAttribute('src') !== src; }",
            arg=[f".jupyter-widgets-output-area {OUTPUT_IMG}, .widget-output {OUTPUT_IMG}", before_src],
            timeout=60_000)
        assert readout.inner_text().strip() == "0.00", readout.inner_text()
        _wait_for_all_cells_run(page, timeout_s=30)
        after = widget_image.screenshot(path=str(SCREENSHOTS / "explore_widget_after.png"))
        page.screenshot(path=str(SCREENSHOTS / "explore_after_slider.png"), full_page=True)
        difference = _pixel_difference(before, after)
        assert difference > 0.5, f"the timeline did not change on the score slider (mean diff {difference:.2f})"
        assert _pixel_std(after) > MIN_STD
        errors = _errors_shown(page)
        assert not errors, f"the notebook shows errors after the slider change: {errors}"


def test_an_executed_notebook_opens_unmodified_with_its_figures_and_says_how_to_use_its_controls(lab: str) -> None:
    """What a person meets opening the study's executed notebooks (reports/_work/notebooks/) in JupyterLab:
    the stored figures, no tab marked modified, and, where the widgets' kernel is gone, a sentence in
    place of the controls rather than ``VBox(children=(Dropdown(...``."""
    from tal_lab.analysis.run_views import PANEL_TEXT

    with _notebook_page(lab, EXECUTED, "executed") as page:
        # JupyterLab writes the kernel's spec and language into the notebook once the kernel is up
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SCREENSHOTS / "executed_notebook.png"), full_page=True)
        tab = page.locator(".lm-TabBar-tab", has_text=EXECUTED)
        assert tab.count() == 1 and "jp-mod-dirty" not in (tab.get_attribute("class") or ""), \
            "the executed notebook opened marked as modified"
        images = page.locator(OUTPUT_IMG)
        assert images.count() >= 2, f"{images.count()} stored images shown"
        for i in range(images.count()):
            shot = images.nth(i).screenshot(path=str(SCREENSHOTS / f"executed_image_{i}.png"))
            assert _pixel_std(shot) > MIN_STD, f"stored image {i} looks blank"
        texts = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert any(PANEL_TEXT in t for t in texts), "the widget cell does not say how to get its controls"
        assert not any("VBox(children" in t for t in texts)
        errors = _errors_shown(page)
        assert not errors, f"the executed notebook shows errors or figures as text: {errors}"
