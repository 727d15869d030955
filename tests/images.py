"""Rendered figures decoded back to pixels, so tests check what an image shows, not its byte count."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Distinct colours a figure with axes, text and data shows at the least (a blank canvas has 1,
# axes and labels alone add black, greys and anti-aliasing shades, data adds its colours).
MIN_COLOURS = 16


def decode_png(data: bytes | Path) -> np.ndarray:
    """The RGB pixels of a PNG (bytes or a file): (height, width, 3) uint8."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    assert raw[:8] == PNG_MAGIC, f"not a PNG: {data if isinstance(data, Path) else raw[:8]!r}"
    with Image.open(io.BytesIO(raw)) as image:
        return np.asarray(image.convert("RGB"))


def png_dpi(path: Path) -> tuple[float, float]:
    """The resolution a PNG file records (matplotlib writes the savefig dpi)."""
    with Image.open(path) as image:
        return image.info["dpi"]


def render(fig: Figure, dpi: int) -> np.ndarray:
    """``fig`` saved as a PNG at ``dpi`` (its own size, no tight bounding box) and decoded."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return decode_png(buffer.getvalue())


def assert_drawn(pixels: np.ndarray, where: object = "image") -> None:
    """The image is not blank: it varies, and shows many colours (text, lines, fills)."""
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert pixels.std() > 10 and len(colours) >= MIN_COLOURS, (
        f"{where} looks blank: pixel std {pixels.std():.1f}, {len(colours)} colours")


def assert_figure_image(fig: Figure, dpi: int = 40) -> np.ndarray:
    """``fig`` renders at its size in inches times ``dpi``, and not blank; returns the pixels."""
    pixels = render(fig, dpi)
    width, height = fig.get_size_inches() * dpi
    assert pixels.shape[:2] == (int(height), int(width)), (pixels.shape, width, height)  # Agg truncates
    assert_drawn(pixels, fig)
    return pixels
