"""Changing a config: ``key=value`` overrides parsed, and a new validated config made from an old one."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import yaml

from tal_lab.config.dialects import choose_recipe
from tal_lab.config.errors import ConfigError
from tal_lab.config.frozen import FrozenDict, thaw
from tal_lab.config.resolve import check_not_derived, resolve, without_derived_keys

__all__ = ["parse_overrides", "apply_overrides"]


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key.sub=value`` strings (values in YAML syntax) into a nested dict."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{item}' has an empty key")
        value = yaml.safe_load(raw) if raw.strip() else None
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return nested


def _deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = thaw(value)
    return base


def apply_overrides(cfg: Mapping[str, Any], overrides: Mapping[str, Any] | Iterable[str]) -> FrozenDict:
    """A new validated, frozen config: ``cfg`` changed by ``overrides`` (nested mapping or
    ``key=value`` strings); ``cfg`` itself is left as it is.

    ``train_cfg`` / ``test_cfg`` overrides go to the top-level sections, which are then copied
    into ``model`` again, so ``train_cfg.loss_weight=2`` is all a lambda_reg ablation needs.
    ``cfg`` keeps its dialect (``cfg['recipe']``; a plain mapping without one is read as
    :func:`~tal_lab.config.load_config` reads it).

    Raises:
        ConfigError: an unknown key or an impossible value, naming the dotted key; an override
            changing the recipe.
    """
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    check_not_derived(overrides)
    if "recipe" in cfg and overrides.get("recipe", cfg["recipe"]) != cfg["recipe"]:
        raise ConfigError(f"config key 'recipe': a loaded config keeps its dialect ({cfg['recipe']!r}: its defaults "
                          f"are {cfg['recipe']}'s); load the source again with recipe={overrides['recipe']} instead")
    recipe = choose_recipe(cfg, overrides).recipe
    return resolve(_deep_update(without_derived_keys(thaw(cfg)), thaw(overrides)), recipe)
