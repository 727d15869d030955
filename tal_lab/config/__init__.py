"""Configuration: ActionFormer's YAML schema read, validated once and frozen, at the edge.

Modules, one job each: :mod:`~tal_lab.config.dialects` (ActionFormer's or TriDet's: which one a
config is read in, their spellings, the recipe options where they differ),
:mod:`~tal_lab.config.defaults` (the defaults merged under every config, per dialect),
:mod:`~tal_lab.config.io` (reading a YAML file or mapping, writing ActionFormer's
spelling), :mod:`~tal_lab.config.sentinels` (the reference's ``-1`` / ``<= 0`` values as
explicit ones), :mod:`~tal_lab.config.validate` (one check per section),
:mod:`~tal_lab.config.resolve` (merge, validate, derive, freeze), :mod:`~tal_lab.config.loading`
(:func:`load_config`), :mod:`~tal_lab.config.overrides` (:func:`apply_overrides`),
:mod:`~tal_lab.config.frozen` (the immutable mapping), :mod:`~tal_lab.config.geometry`
(pyramid strides and divisors), :mod:`~tal_lab.config.presets` (the paper's configurations)
and :mod:`~tal_lab.config.published` (the official recipes of both repositories).
"""

from tal_lab.config.defaults import DATASET_NAMES, DEFAULTS, PADDING_MODES, RECIPE_DEFAULTS, TRIDET_DEFAULTS
from tal_lab.config.dialects import RECIPE_OPTIONS, RECIPES
from tal_lab.config.errors import ConfigError
from tal_lab.config.frozen import FrozenDict, FrozenList, freeze, thaw
from tal_lab.config.geometry import (attention_div_factor, attention_windows, level_strides, max_div_factor,
                                     sgp_div_factor)
from tal_lab.config.io import dump_config, reference_dict
from tal_lab.config.loading import load_config
from tal_lab.config.overrides import apply_overrides, parse_overrides
from tal_lab.config.presets import PAPER_CONFIGURATIONS, paper_configuration
from tal_lab.config.sentinels import ADAPTIVE_LOSS_WEIGHT, GLOBAL_ATTENTION, AttentionWindow, LossWeight

__all__ = [
    "ConfigError", "DEFAULTS", "TRIDET_DEFAULTS", "RECIPE_DEFAULTS", "RECIPES", "RECIPE_OPTIONS", "DATASET_NAMES",
    "PADDING_MODES", "PAPER_CONFIGURATIONS", "GLOBAL_ATTENTION", "ADAPTIVE_LOSS_WEIGHT",
    "AttentionWindow", "LossWeight", "FrozenDict", "FrozenList", "freeze", "thaw", "load_config",
    "parse_overrides", "apply_overrides", "paper_configuration", "dump_config", "reference_dict", "level_strides",
    "attention_windows", "max_div_factor", "attention_div_factor", "sgp_div_factor",
]
