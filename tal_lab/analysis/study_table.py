"""A study table: numbers, a display form, a caption, and exports to CSV, Markdown and LaTeX.

The numeric ``frame`` is what CSV holds (machine-readable: means, standard deviations, paper
values and differences in separate columns). ``display`` holds the same rows as strings, as a
reader sees them ("80.29 ± 0.51"), and is what Markdown and LaTeX show under the caption.
Markdown and LaTeX are written by this module (no ``tabulate`` / ``jinja2`` needed), and every
file is written atomically (temporary file, then rename), so a report folder never holds half a
table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from tal_lab.core.atomic_io import write_text_atomic

__all__ = ["StudyTable", "EXPORT_FORMATS", "format_number", "format_mean_std", "format_diff", "latex_escape"]

EXPORT_FORMATS: dict[str, str] = {"csv": ".csv", "md": ".md", "tex": ".tex"}
MISSING = "–"  # shown for a missing value (no run, no paper number)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def format_number(value: object, decimals: int = 2) -> str:
    """A number with fixed decimals, or the missing mark."""
    return MISSING if _is_missing(value) else f"{float(value):.{decimals}f}"


def format_mean_std(mean: object, std: object, decimals: int = 2) -> str:
    """'mean ± std', or just 'mean' when std is missing (one seed)."""
    if _is_missing(mean):
        return MISSING
    return f"{float(mean):.{decimals}f}" + ("" if _is_missing(std) else f" ± {float(std):.{decimals}f}")


def format_diff(value: object, decimals: int = 2) -> str:
    """A signed difference ('+1.23', '-0.40'), or the missing mark."""
    return MISSING if _is_missing(value) else f"{float(value):+.{decimals}f}"


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "λ": r"$\lambda$", "–": "--", "≥": r"$\geq$", "×": r"$\times$",
    "−": r"$-$",
    "*": r"$^{*}$",
}


def latex_escape(text: object) -> str:
    """Escape LaTeX specials and map the few unicode signs tables use to math."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


@dataclass
class StudyTable:
    """One table of the study.

    Attributes:
        name: file stem of the exports (e.g. 'table1_configurations').
        title: short title ('Table I: backbone and neck configurations').
        frame: numeric rows (CSV).
        display: the same rows formatted for reading (Markdown / LaTeX); defaults to ``frame``.
        caption: what the numbers are and which data they came from (always shown).
        notes: extra remarks (missing runs, excluded data), listed under the table.
        align: per display column, 'l' or 'r'; default: first column left, others right.
    """

    name: str
    title: str
    frame: pd.DataFrame
    caption: str
    display: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    align: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not self.name or any(ch in self.name for ch in "/\\ "):
            raise ValueError(f"table name {self.name!r} must be a non-empty file stem without spaces or slashes")
        if self.display is None:
            self.display = self.frame.copy()
        if len(self.display) != len(self.frame):
            raise ValueError(f"table {self.name}: display has {len(self.display)} rows, frame {len(self.frame)}")

    # ------------------------------------------------------------------ text forms
    def _aligns(self) -> list[str]:
        cols = list(self.display.columns)
        if self.align is not None:
            if len(self.align) != len(cols):
                raise ValueError(f"table {self.name}: {len(self.align)} alignments for {len(cols)} columns")
            return list(self.align)
        return ["l"] + ["r"] * (len(cols) - 1)

    def _cells(self) -> list[list[str]]:
        return [[MISSING if _is_missing(v) else str(v) for v in row] for row in self.display.itertuples(index=False)]

    def csv_text(self) -> str:
        return self.frame.to_csv(index=False)

    def markdown_text(self) -> str:
        """Title, caption, a GitHub-flavoured pipe table and the notes."""
        header = [_md_cell(c) for c in self.display.columns]
        rule = [":---" if a == "l" else "---:" for a in self._aligns()]
        lines = [f"**{self.title}.** {self.caption}", "",
                 "| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in self._cells()]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def latex_text(self) -> str:
        """A ``table`` float (booktabs rules, scaled to the line width) with caption and label."""
        cols = " ".join(self._aligns())
        body = [" & ".join(latex_escape(c) for c in self.display.columns) + r" \\", r"\midrule"]
        body += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in self._cells()]
        caption = latex_escape(f"{self.title}. {self.caption}")
        if self.notes:
            caption += " " + " ".join(latex_escape(n) for n in self.notes)
        return "\n".join([
            "% requires \\usepackage{booktabs} and \\usepackage{graphicx}",
            r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}", f"\\label{{tab:{self.name}}}",
            r"\resizebox{\linewidth}{!}{%", f"\\begin{{tabular}}{{{cols}}}", r"\toprule", *body,
            r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""])

    def _repr_markdown_(self) -> str:  # Jupyter shows the formatted table with its caption
        return self.markdown_text()

    # ------------------------------------------------------------------ files
    def _write(self, folder: str | Path, fmt: str, text: str) -> Path:
        path = Path(folder) / f"{self.name}{EXPORT_FORMATS[fmt]}"
        write_text_atomic(path, text)
        return path

    def to_csv(self, folder: str | Path) -> Path:
        """Write ``{folder}/{name}.csv`` (the numeric frame) and return its path."""
        return self._write(folder, "csv", self.csv_text())

    def to_markdown(self, folder: str | Path) -> Path:
        """Write ``{folder}/{name}.md`` (caption, table, notes) and return its path."""
        return self._write(folder, "md", self.markdown_text())

    def to_latex(self, folder: str | Path) -> Path:
        """Write ``{folder}/{name}.tex`` (a table float) and return its path."""
        return self._write(folder, "tex", self.latex_text())

    def export(self, folder: str | Path, formats: Sequence[str] = ("csv", "md", "tex")) -> dict[str, Path]:
        """Write the table in each format (folders are created); returns format -> path."""
        unknown = [f for f in formats if f not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")
        writers = {"csv": self.to_csv, "md": self.to_markdown, "tex": self.to_latex}
        return {fmt: writers[fmt](folder) for fmt in formats}
