"""The study's configurations (paper Table I): backbone / neck pairs over a base config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from tal_lab.config.errors import ConfigError
from tal_lab.config.frozen import FrozenDict, freeze
from tal_lab.config.loading import load_config
from tal_lab.config.overrides import apply_overrides

__all__ = ["PAPER_CONFIGURATIONS", "paper_configuration"]

PAPER_CONFIGURATIONS: Mapping[str, Mapping[str, str]] = freeze({
    "original": {"backbone_type": "convTransformer", "fpn_type": "identity"},
    "A": {"backbone_type": "convTransformer", "fpn_type": "fpn"},
    "B": {"backbone_type": "conv", "fpn_type": "identity"},
    "C": {"backbone_type": "conv", "fpn_type": "fpn"},
    "D": {"backbone_type": "sgp", "fpn_type": "fpn"},
    "E": {"backbone_type": "sgp", "fpn_type": "identity"},
})


def paper_configuration(name: str, base: str | Path | Mapping[str, Any] | None = None) -> FrozenDict:
    """The study's configuration ``name`` ('original', 'A'-'E') applied to ``base``.

    ``base`` is a config (mapping or YAML path) holding everything else, e.g. a THUMOS14 config
    or the synthetic benchmark's generated one; by default tal_lab's defaults.

    Raises:
        ConfigError: an unknown name, or a base config that does not validate.
    """
    if name not in PAPER_CONFIGURATIONS:
        raise ConfigError(f"unknown paper configuration {name!r}; choose one of {list(PAPER_CONFIGURATIONS)}")
    cfg = base if isinstance(base, Mapping) else load_config(base)
    return apply_overrides(cfg, {"model": PAPER_CONFIGURATIONS[name]})
