"""The figure type every plotting function of tal_lab returns.

Library plots are built on :class:`matplotlib.figure.Figure` directly, not through pyplot, so
nothing registers with a global figure manager, leaks, or shows twice. A bare ``Figure`` has
only a text repr (``<Figure size ...>``) unless IPython's inline backend happens to be active,
which it is not until someone imports pyplot; so a notebook cell returning one would show text.
:class:`NotebookFigure` carries its own PNG repr, so it renders as an image in JupyterLab, in
papermill's output notebooks and in HTML exported from them, and still is a plain ``Figure``
for scripts (``fig.savefig``).
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure

__all__ = ["NOTEBOOK_DPI", "NotebookFigure", "new_figure"]

# Screen resolution of the inline image; files written by tal_lab.study.reports use their own dpi.
NOTEBOOK_DPI = 100


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` that IPython displays as a PNG image."""

    def _repr_png_(self) -> bytes | None:
        if not self.get_axes():
            return None  # nothing to draw: fall back to the text repr
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight")
        return buffer.getvalue()


def new_figure(**kwargs: Any) -> NotebookFigure:
    """A new figure (``Figure`` keyword arguments; ``layout`` defaults to ``"constrained"``)."""
    kwargs.setdefault("layout", "constrained")
    return NotebookFigure(**kwargs)
