"""From a plain config in ActionFormer's schema to the resolved, validated, frozen config.

The steps :func:`tal_lab.config.load_config` and :func:`tal_lab.config.apply_overrides` share:
read TriDet's spellings as tal_lab's, merge over a fresh copy of the defaults of the config's
dialect (:mod:`tal_lab.config.dialects`; the references merge by reference, so editing one
loaded config could change the defaults seen by the next), turn the references' sentinels into
explicit values, validate, derive the model keys ActionFormer copies into ``model``, freeze.
"""

from __future__ import annotations

from typing import Any, Mapping

from tal_lab.config.defaults import DERIVED_MODEL_KEYS, FREE_FORM_KEYS, RECIPE_DEFAULTS
from tal_lab.config.dialects import RECIPES, translate_spellings
from tal_lab.config.errors import ConfigError
from tal_lab.config.frozen import FrozenDict, freeze, thaw
from tal_lab.config.sentinels import from_reference
from tal_lab.config.validate import validate_config

__all__ = ["resolve", "without_derived_keys", "check_not_derived"]


def _merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Merge ``update`` into ``base`` in place; unknown keys raise ConfigError."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"unknown config key '{dotted}' (known keys here: {known})")
        if isinstance(base[key], dict) and dotted not in FREE_FORM_KEYS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{dotted}' must be a mapping, got {value!r}")
            _merge(base[key], value, prefix=f"{dotted}.")
        else:
            base[key] = thaw(value)
    return base


def without_derived_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` (plain, changed in place) without the model keys that resolving derives again."""
    if isinstance(cfg.get("model"), dict):
        cfg["model"] = {k: v for k, v in cfg["model"].items() if k not in DERIVED_MODEL_KEYS}
    return cfg


def check_not_derived(overrides: Mapping[str, Any]) -> None:
    """Overrides must change the sections a derived model key is copied from, not the copy.

    Raises:
        ConfigError: naming the derived key and its source.
    """
    model = overrides.get("model")
    for key in model if isinstance(model, Mapping) else ():
        if key in DERIVED_MODEL_KEYS:
            source = key if key in ("train_cfg", "test_cfg") else f"dataset.{key}"
            raise ConfigError(f"config key 'model.{key}' is derived from '{source}'; override '{source}' instead")


def resolve(user: dict[str, Any], recipe: str, overrides: dict[str, Any] | None = None) -> FrozenDict:
    """The frozen config of ``user`` (a plain dict in the schema) and ``overrides`` (both changed
    in place), read in the dialect ``recipe`` (:func:`tal_lab.config.dialects.choose_recipe`).

    A previously resolved config carries the derived model keys; they must agree with the
    sections they are derived from, so they are dropped and derived again.

    Raises:
        ConfigError: unknown keys or impossible values, naming the dotted key.
    """
    if recipe not in RECIPES:
        raise ConfigError(f"config key 'recipe': {recipe!r} is not one of {RECIPES}")
    cfg = _merge(thaw(RECIPE_DEFAULTS[recipe]), without_derived_keys(translate_spellings(user)))
    cfg["recipe"] = recipe
    if overrides:
        check_not_derived(overrides)
        _merge(cfg, translate_spellings(overrides))
    for key in ("train_split", "val_split", "devices"):
        if isinstance(cfg[key], str):
            cfg[key] = [cfg[key]]
    from_reference(cfg)
    validate_config(cfg)
    model, ds = cfg["model"], cfg["dataset"]
    model.update(input_dim=ds["input_dim"], num_classes=ds["num_classes"], max_seq_len=ds["max_seq_len"])
    # Copies, not the sections themselves: the reference shares them by reference.
    model.update(train_cfg=thaw(cfg["train_cfg"]), test_cfg=thaw(cfg["test_cfg"]))
    return freeze(cfg)
