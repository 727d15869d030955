"""Reports: figures as PNG + SVG, executed notebooks as HTML, and an index of everything.

Layout of a reports folder (``tal-lab study`` regenerates all of it)::

    reports/
      index.html, README.md      the index: tables inline, figures, notebooks, runs
      tables/                    table*.csv / .md / .tex (tables.ipynb)
      figures/                   *.png + *.svg (timelines, feature_diversity, explore notebooks)
      notebooks/*.html           the executed analysis notebooks
      runs/<run>/                one run's report: run_ablation.html, figures, mAP table
      _work/                     executed .ipynb files (inputs of the HTML; not committed)

Every file is written atomically (temporary file, then rename), so an interrupted export
never leaves half a page.
"""

from __future__ import annotations

import datetime
import html
import io
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tal_lab.core.atomic_io import write_bytes_atomic, write_text_atomic

__all__ = [
    "execute_notebook",
    "TAGGED_CELL_TIMEOUTS_S",
    "KERNEL_START_ATTEMPTS",
    "kernel_never_started",
    "kernel_log_path",
    "notebook_error",
    "FIGURE_FORMATS",
    "FIGURE_DPI",
    "save_figure",
    "notebook_to_html",
    "export_notebooks",
    "write_index",
    "export_reports",
]

FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")
# Resolution of PNG figures: sharp on a laptop screen, small enough to commit a sample.
FIGURE_DPI = 120
_WORK = "_work"


# Seconds a cell with this tag may run under the study. The explorer's widget cell takes a few
# seconds; under nbclient a cell that builds ipywidgets sometimes never gets its reply although
# the kernel is idle (jupyter/nbclient#312; seen about once in six analysis runs), and without a
# limit the study would wait forever. The caller retries the notebook once in a fresh kernel.
TAGGED_CELL_TIMEOUTS_S = {"widgets": 120}


def _cell_timeout(cell: Any) -> int | None:
    tags = cell.get("metadata", {}).get("tags", [])
    return next((seconds for tag, seconds in TAGGED_CELL_TIMEOUTS_S.items() if tag in tags), None)


def execute_notebook(notebook: str | Path, output: str | Path, parameters: Mapping[str, Any],
                     cwd: str | Path) -> Path:
    """Run ``notebook`` with papermill into ``output`` in a fresh ``python3`` kernel started in
    ``cwd`` (a failed run still writes ``output``, with the error in its cell, and raises
    papermill's PapermillExecutionError; a tagged cell past its limit in
    :data:`TAGGED_CELL_TIMEOUTS_S` raises nbclient's CellTimeoutError). A kernel that never
    answers is started again (:data:`KERNEL_START_ATTEMPTS`); the kernel process's own stderr
    goes to :func:`kernel_log_path` beside ``output``."""
    # papermill and nbformat / nbconvert below (the notebook stack, ~1.5 s to import) load only
    # when a notebook runs or is exported: every tal-lab command imports this module.
    import papermill

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    log = kernel_log_path(output)

    def run() -> Path:
        # --log-level=CRITICAL: the kernel's start-up warnings (TCP transport) would fill its log, and
        # jupyter_client interrupts each kernel before shutting it down, which ipykernel logs as an
        # ERROR after a successful run. Cell errors still arrive through papermill.
        papermill.execute_notebook(str(notebook), str(output), parameters=dict(parameters), kernel_name="python3",
                                   cwd=str(cwd), progress_bar=False, log_output=False,
                                   extra_arguments=["--log-level=CRITICAL"], timeout_func=_cell_timeout,
                                   kernel_manager_class=_kernel_manager_writing_stderr_to(log))
        if log.is_file() and log.stat().st_size == 0:
            log.unlink()  # a quiet kernel leaves no file beside its notebook
        return output

    for _ in range(KERNEL_START_ATTEMPTS - 1):
        try:
            return run()
        except RuntimeError as err:
            if not kernel_never_started(err):
                raise
    return run()


# A kernel that never answered is started again: with kernels starting side by side, one can
# lose a TCP port that jupyter_client chose for it to another process's socket in between
# ("Address already in use"), and wait out the start timeout. Nothing of the notebook ran then.
KERNEL_START_ATTEMPTS = 3


def kernel_log_path(output: str | Path) -> Path:
    """Where the kernel that executed ``output`` wrote its process's stderr: ``NAME.kernel.log``
    beside it. Cell output is in the notebook; this file holds what bypasses the notebook (native
    libraries' messages, a crash, the kernel's own shutdown races), appended per attempt, and
    removed after a successful run that wrote nothing there."""
    return Path(output).with_suffix(".kernel.log")


def _kernel_manager_writing_stderr_to(path: Path) -> type:
    """nbclient's kernel manager, with the kernel process's stderr going to ``path``.

    On a busy 2-core machine, kernels shutting down side by side sometimes print tornado's
    "ERROR ... Socket operation on non-socket" (ipykernel flushing a closed pipe) or zmq's
    "Address already in use" straight to the inherited stderr, which read as errors of a study
    that succeeded; the log keeps them for a run that did fail.
    """
    from jupyter_client import AsyncKernelManager

    class KernelManagerWithStderrLog(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            with open(path, "ab") as log:  # the kernel process keeps its own copy of the descriptor
                kw.setdefault("stderr", log)
                await super().start_kernel(**kw)

    return KernelManagerWithStderrLog


def kernel_never_started(err: BaseException) -> bool:
    """Whether jupyter_client gave up on a kernel before it ran any cell (its start-up
    RuntimeErrors), as opposed to a cell's error or a kernel that died while running one."""
    text = str(err)
    return isinstance(err, RuntimeError) and (text.startswith("Kernel didn't respond")
                                              or text.startswith("Kernel died before replying to kernel_info"))


def notebook_error(err: BaseException) -> str:
    """One line for a failed notebook: its exception's name and message (papermill keeps them
    as ``ename`` / ``evalue``), else the error itself."""
    name = getattr(err, "ename", None)
    return f"{name}: {getattr(err, 'evalue', '')}" if name else f"{type(err).__name__}: {err}"


def save_figure(fig: Any, stem: str | Path, formats: Sequence[str] = FIGURE_FORMATS,
                dpi: int = FIGURE_DPI) -> dict[str, Path]:
    """Write a matplotlib figure as ``stem.png`` and ``stem.svg`` (folders created).

    Returns:
        format -> path.

    Raises:
        ValueError: an unknown format, or a figure without axes (nothing to show).
    """
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; choose from {list(FIGURE_FORMATS)}")
    if not fig.get_axes():
        raise ValueError(f"figure for {stem} has no axes; nothing to save")
    stem = Path(stem)
    paths = {}
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
        path = stem.with_name(f"{stem.name}.{fmt}")
        write_bytes_atomic(path, buffer.getvalue())
        paths[fmt] = path
    return paths


def notebook_to_html(notebook: str | Path, output: str | Path) -> Path:
    """Export an executed notebook to a standalone HTML page (images embedded)."""
    import nbformat  # the notebook stack: see execute_notebook
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    output = Path(output)
    write_text_atomic(output, body)
    return output


def export_notebooks(reports_dir: str | Path, log: Callable[[str], None] | None = None) -> list[Path]:
    """HTML of every executed notebook under ``reports_dir/_work``: analysis notebooks to
    ``notebooks/<name>.html``, run notebooks to ``runs/<run>/run_ablation.html``. Pages newer
    than their notebook are kept."""
    reports_dir = Path(reports_dir)
    work = reports_dir / _WORK
    pages = []
    jobs = [(nb, reports_dir / "notebooks" / f"{nb.stem}.html") for nb in sorted((work / "notebooks").glob("*.ipynb"))]
    jobs += [(nb, reports_dir / "runs" / nb.stem / "run_ablation.html")
             for nb in sorted((work / "runs").glob("*.ipynb"))]
    for notebook, page in jobs:
        if not page.is_file() or page.stat().st_mtime < notebook.stat().st_mtime:
            try:
                notebook_to_html(notebook, page)
            except Exception as err:  # noqa: BLE001 - a broken notebook must not stop the index
                if log:
                    log(f"  could not export {notebook}: {type(err).__name__}: {err}")
                continue
        pages.append(page)
    return pages


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _table_entries(reports_dir: Path) -> list[dict[str, Any]]:
    entries = []
    for md in sorted((reports_dir / "tables").glob("*.md")):
        files = {fmt: md.with_suffix(f".{fmt}") for fmt in ("csv", "md", "tex")}
        entries.append({"name": md.stem, "markdown": md.read_text(),
                        "files": {fmt: p for fmt, p in files.items() if p.is_file()}})
    return entries


def _figure_entries(folder: Path) -> list[dict[str, Path]]:
    entries = []
    for png in sorted(folder.glob("*.png")):
        svg = png.with_suffix(".svg")
        entries.append({"name": png.stem, "png": png, **({"svg": svg} if svg.is_file() else {})})
    return entries


def _markdown_table_to_html(markdown: str) -> str:
    """The bold title line, the pipe table and the notes of a table's Markdown, as HTML."""
    lines = markdown.splitlines()
    out, rows = [], []
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            if all(set(c) <= set(":-") for c in cells):
                continue
            rows.append(cells)
            continue
        if rows:
            out.append(_html_table(rows))
            rows = []
        if line.startswith("**"):
            title, _, rest = line[2:].partition("**")
            out.append(f"<p class='caption'><b>{html.escape(title)}</b>{html.escape(rest)}</p>")
        elif line.startswith("- "):
            out.append(f"<p class='note'>{html.escape(line[2:])}</p>")
    if rows:
        out.append(_html_table(rows))
    return "\n".join(out)


def _html_table(rows: Sequence[Sequence[str]]) -> str:
    """A header row and body rows as an HTML table in a box that scrolls sideways: Tables I-IV
    are wider than a laptop screen, and their first column stays in view while scrolling."""
    head, *body = rows
    return ("<div class='table-scroll'><table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                               for r in body) + "</tbody></table></div>")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.table-scroll{overflow-x:auto;margin:.5em 0 1.5em}table{border-collapse:collapse}td,th{border-bottom:1px solid
#ccc;padding:.25em .6em;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left;
white-space:normal;min-width:12em;position:sticky;left:0;background:#fff}.caption{max-width:60em}.note{color:#555;
font-size:.9em;margin:.2em 0}figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:520px;
border:1px solid #ddd}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}.failed{color:#a00}"""


def _left_out_sentence(tables: int, figures: int, runs: int) -> str:
    parts = [f"{n} {what}{'' if n == 1 else 's'}" for n, what in
             ((tables, "table"), (figures, "figure"), (runs, "run report")) if n]
    if not parts:
        return ""
    return (f" Not listed: {', '.join(parts)} in this folder from an earlier study (tables and figures this study did "
            f"not rewrite, reports of runs outside its plan).")


def write_index(reports_dir: str | Path, plan_text: str = "", failed: Mapping[str, str] | None = None,
                title: str = "tal_lab study report", since: float | None = None,
                run_names: Sequence[str] | None = None) -> Path:
    """Write ``index.html`` and ``README.md`` linking every table, figure, notebook page and
    run report found in ``reports_dir``; returns the index path.

    ``since`` (a ``time.time()``) keeps only the tables and figures written from then on, and
    ``run_names`` only the reports of those runs: a report folder also holds what an earlier study
    wrote (its timelines of other runs, its tables, its runs' reports), which would otherwise be
    shown as this study's. What is left out is counted on the page.
    """
    reports_dir = Path(reports_dir)
    failed = dict(failed or {})
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")

    def current(path: Path) -> bool:
        return since is None or path.stat().st_mtime >= since

    all_tables, all_figures = _table_entries(reports_dir), _figure_entries(reports_dir / "figures")
    tables = [t for t in all_tables if current(t["files"]["md"])]
    figures = [f for f in all_figures if current(f["png"])]
    pages = sorted((reports_dir / "notebooks").glob("*.html"))
    all_runs = sorted(p for p in (reports_dir / "runs").glob("*") if p.is_dir())
    planned = None if run_names is None else set(run_names)
    runs = [p for p in all_runs if planned is None or p.name in planned]
    left_out = _left_out_sentence(len(all_tables) - len(tables), len(all_figures) - len(figures),
                                  len(all_runs) - len(runs))

    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
         f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
         f"<p>Generated {stamp} by <code>tal-lab study</code>; every file here is regenerated by it. "
         f"Table captions state the data each table came from.{html.escape(left_out)}</p>"]
    md = [f"# {title}", "", f"Generated {stamp} by `tal-lab study`; every file in this folder is regenerated by "
          f"it (see [index.html](index.html)). Table captions state the data each table came from.{left_out}", ""]
    if failed:
        h.append("<h2>Failures</h2><ul>" + "".join(f"<li class='failed'>{html.escape(k)}: {html.escape(v)}</li>"
                                                   for k, v in failed.items()) + "</ul>")
        md += ["## Failures", ""] + [f"- {k}: {v}" for k, v in failed.items()] + [""]
    h.append("<h2>Tables</h2>" if tables else "<h2>Tables</h2><p>No tables yet.</p>")
    md += ["## Tables", ""]
    for entry in tables:
        links = " · ".join(f"<a href='{_rel(p, reports_dir)}'>{fmt.upper()}</a>" for fmt, p in entry["files"].items())
        h.append(_markdown_table_to_html(entry["markdown"]) + f"<p>{links}</p>")
        md += [entry["markdown"].rstrip(), "",
               " · ".join(f"[{fmt.upper()}]({_rel(p, reports_dir)})" for fmt, p in entry["files"].items()), ""]
    h.append("<h2>Figures</h2>")
    md += ["## Figures", ""]
    for fig in figures:
        svg = f" (<a href='{_rel(fig['svg'], reports_dir)}'>SVG</a>)" if "svg" in fig else ""
        h.append(f"<figure><a href='{_rel(fig['png'], reports_dir)}'><img src='{_rel(fig['png'], reports_dir)}' "
                 f"alt='{html.escape(fig['name'])}'></a>"
                 f"<figcaption>{html.escape(fig['name'])}{svg}</figcaption></figure>")
        md += [f"![{fig['name']}]({_rel(fig['png'], reports_dir)})", ""]
    h.append("<h2>Notebooks</h2><ul>" + "".join(
        f"<li><a href='{_rel(p, reports_dir)}'>{html.escape(p.stem)}</a></li>" for p in pages) + "</ul>")
    md += ["## Notebooks", ""] + [f"- [{p.stem}]({_rel(p, reports_dir)})" for p in pages] + [""]
    h.append("<h2>Runs</h2><ul>")
    md += ["## Runs", ""]
    for run in runs:
        page = run / "run_ablation.html"
        links = [f"<a href='{_rel(page, reports_dir)}'>notebook</a>"] if page.is_file() else []
        links += [f"<a href='{_rel(f, reports_dir)}'>{html.escape(f.name)}</a>"
                  for f in sorted(run.iterdir()) if f.suffix in (".png", ".csv", ".md")]
        h.append(f"<li>{html.escape(run.name)}: {' · '.join(links)}</li>")
        md.append(f"- {run.name}" + (f": [notebook]({_rel(page, reports_dir)})" if page.is_file() else ""))
    h.append("</ul>")
    md.append("")
    if plan_text:
        h.append(f"<h2>Plan</h2><pre>{html.escape(plan_text)}</pre>")
        md += ["## Plan", "", "```", plan_text, "```", ""]
    h.append("</body></html>")
    index = reports_dir / "index.html"
    write_text_atomic(index, "\n".join(h) + "\n")
    write_text_atomic(reports_dir / "README.md", "\n".join(md))
    return index


def export_reports(reports_dir: str | Path, plan_text: str = "", failed: Mapping[str, str] | None = None,
                   log: Callable[[str], None] | None = None, since: float | None = None,
                   run_names: Sequence[str] | None = None) -> Path:
    """HTML of the executed notebooks, then the index page (``since`` and ``run_names`` as in
    :func:`write_index`); returns ``index.html``'s path."""
    reports_dir = Path(reports_dir)
    export_notebooks(reports_dir, log)
    return write_index(reports_dir, plan_text=plan_text, failed=failed, since=since, run_names=run_names)
