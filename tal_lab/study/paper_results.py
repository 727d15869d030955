"""The study paper's published numbers, as data.

Source: *Enhancing ActionFormer for Temporal Action Localization: Architectural Exploration and
Preliminary Evaluation* (Rathnayaka & Thayasivam), Tables I-III. Every value is an mAP in
percent **on THUMOS14** (Test split, tIoU thresholds 0.3:0.1:0.7). The tables in
:mod:`tal_lab.study.tables` put these numbers beside the run store's results; they are never
a substitute for a run, and tables built on synthetic data say so in their captions.

The "original" row of Table I and the 50-epoch row of Table II are the official ActionFormer
result (Zhang et al., ECCV 2022) that the paper quotes.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

__all__ = [
    "PAPER_DATASET",
    "MAP_COLUMNS",
    "TABLE1_LABELS",
    "TABLE1",
    "TABLE1_EPOCHS",
    "TABLE2",
    "TABLE2_NOTES",
    "TABLE3",
    "TABLE3_COLUMNS",
]

# What the paper's numbers were measured on (stated in every caption that shows them).
PAPER_DATASET = "THUMOS14"

# mAP columns in the order the paper prints them (percent).
MAP_COLUMNS: tuple[str, ...] = ("mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "avg_mAP")


def _row(values: tuple[float, ...], columns: tuple[str, ...] = MAP_COLUMNS) -> Mapping[str, float]:
    if len(values) != len(columns):
        raise ValueError(f"paper row {values} does not have one value per column {columns}")
    return MappingProxyType(dict(zip(columns, values)))


# Table I row labels, keyed like tal_lab.config.PAPER_CONFIGURATIONS.
TABLE1_LABELS: Mapping[str, str] = MappingProxyType({
    "original": "Original ActionFormer",
    "A": "Transformer backbone + Refined FPN neck (A)",
    "B": "1D Convolutional backbone (B)",
    "C": "1D Convolutional backbone + Refined FPN neck (C)",
    "D": "SGP backbone + Refined FPN neck (D)",
    "E": "SGP backbone + Original ActionFormer neck (E)",
})

# Table I: all models trained for 30 epochs under identical settings (the original row is the
# official ActionFormer result, trained with its own schedule).
TABLE1_EPOCHS = 30
TABLE1: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "original": _row((82.10, 77.80, 71.00, 59.40, 43.90, 66.80)),
    "A": _row((80.29, 76.02, 68.85, 58.53, 42.13, 65.16)),
    "B": _row((52.14, 49.27, 44.18, 38.25, 29.09, 46.60)),
    "C": _row((72.79, 68.37, 61.00, 50.71, 36.51, 57.88)),
    "D": _row((79.79, 75.82, 69.30, 57.74, 41.55, 64.84)),
    "E": _row((82.61, 78.48, 71.55, 60.00, 44.54, 67.44)),
})

# Table II: the original configuration trained for each number of epochs; 50 is the official
# ActionFormer result.
TABLE2: Mapping[int, Mapping[str, float]] = MappingProxyType({
    1: _row((30.12, 25.43, 17.85, 10.94, 5.20, 17.91)),
    4: _row((55.24, 48.67, 37.92, 25.14, 14.62, 36.72)),
    8: _row((72.18, 66.28, 55.47, 40.84, 22.94, 51.54)),
    15: _row((77.86, 72.02, 61.48, 47.32, 29.15, 57.97)),
    25: _row((80.42, 74.56, 65.07, 50.83, 33.62, 60.90)),
    50: _row((82.10, 77.80, 71.00, 59.40, 43.90, 66.80)),
})
TABLE2_NOTES: Mapping[int, str] = MappingProxyType({
    1: "Some classes not predicted",
    4: "Rapid improvement",
    8: "Model stabilizing",
    15: "Performance stabilizing",
    25: "Near saturation",
    50: "Official result (paper)",
})

# Table III: lambda_reg ablation of the original configuration.
TABLE3_COLUMNS: tuple[str, ...] = ("mAP@0.5", "mAP@0.7", "avg_mAP")
TABLE3: Mapping[float, Mapping[str, float]] = MappingProxyType({
    0.2: _row((70.1, 39.8, 65.0), TABLE3_COLUMNS),
    0.5: _row((71.4, 41.7, 66.4), TABLE3_COLUMNS),
    1.0: _row((71.0, 43.6, 66.9), TABLE3_COLUMNS),
    2.0: _row((69.7, 43.1, 66.3), TABLE3_COLUMNS),
    5.0: _row((68.8, 42.5, 65.1), TABLE3_COLUMNS),
})
