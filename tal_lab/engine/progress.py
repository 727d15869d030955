"""How training shows its progress: widget / terminal bars, plain lines, or nothing.

Bars suit a person watching (JupyterLab, a terminal); a headless run (papermill, a batch job,
output piped to a file) gets one plain line per epoch instead, because a static viewer
renders a widget bar as ``0%| 0/32`` and a log file fills with carriage returns. The mode is
chosen once per run: ``TAL_LAB_PROGRESS=bars|lines|off`` forces it; otherwise a notebook
kernel started by a Jupyter server shows bars, any other kernel (papermill, nbclient) lines,
and a terminal shows bars only when stderr is a TTY.
"""

from __future__ import annotations

import os
import sys
from typing import Literal

__all__ = ["ProgressMode", "PROGRESS_MODES", "progress_mode", "format_epoch_line", "format_seconds"]

ProgressMode = Literal["bars", "lines", "off"]
PROGRESS_MODES: tuple[str, ...] = ("bars", "lines", "off")
# Parent processes of a kernel that a person looks at live (they render ipywidgets).
_INTERACTIVE_PARENTS: tuple[str, ...] = ("jupyter-lab", "jupyter-notebook", "jupyter-server", "jupyter_server",
                                         "jupyterlab", "notebook", "voila")


def _kernel_is_interactive() -> bool | None:
    """True / False inside an IPython kernel (started by a Jupyter server or not); None outside one."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return None
    try:
        import psutil  # not a tal_lab dependency: ipykernel's, so present wherever a kernel runs

        parent = " ".join(psutil.Process().parent().cmdline())
    except Exception:  # noqa: BLE001 - no parent information: assume nobody watches live
        return False
    return any(name in parent for name in _INTERACTIVE_PARENTS)


def progress_mode(enabled: bool) -> ProgressMode:
    """The progress mode of this process when progress is ``enabled``.

    Raises:
        ValueError: ``TAL_LAB_PROGRESS`` holds something else than bars, lines or off.
    """
    if not enabled:
        return "off"
    forced = os.environ.get("TAL_LAB_PROGRESS", "").strip().lower()
    if forced:
        if forced not in PROGRESS_MODES:
            raise ValueError(f"TAL_LAB_PROGRESS={forced!r}: choose one of {', '.join(PROGRESS_MODES)}")
        return forced  # type: ignore[return-value]
    interactive = _kernel_is_interactive()
    if interactive is None:
        interactive = sys.stderr.isatty()
    return "bars" if interactive else "lines"


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_epoch_line(epoch: int, total: int, loss: float, lr: float, epoch_seconds: float,
                      mean_epoch_seconds: float) -> str:
    """One epoch's progress line: loss, learning rate, its time and the estimated time left."""
    left = (total - epoch) * mean_epoch_seconds
    return (f"epoch {epoch}/{total}: loss {loss:.4f}, lr {lr:.2e}, {format_seconds(epoch_seconds)}, "
            f"ETA {format_seconds(left)}")
