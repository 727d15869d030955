"""Configuration: ActionFormer's YAML schema read, validated once and resolved at the edge."""

from tal_lab.config.loading import (BACKBONE_TYPES, DATASET_NAMES, DEFAULTS, FPN_TYPES, HEAD_TYPES,
                                    PAPER_CONFIGURATIONS, SYNTHETIC_PRESETS, ConfigError, apply_overrides,
                                    dump_config, level_strides, load_config, max_div_factor,
                                    paper_configuration, parse_overrides)

__all__ = [
    "ConfigError", "DEFAULTS", "BACKBONE_TYPES", "FPN_TYPES", "HEAD_TYPES", "DATASET_NAMES",
    "SYNTHETIC_PRESETS", "PAPER_CONFIGURATIONS", "load_config", "parse_overrides", "apply_overrides",
    "paper_configuration", "dump_config", "level_strides", "max_div_factor",
]
