"""ActionFormer-schema YAML at the edge: reading a config source, writing a resolved config.

:func:`read_source` accepts an official ``configs/*.yaml`` of ActionFormer or TriDet (or
tal_lab's own), a mapping in the same schema or nothing; :func:`dump_config` writes a resolved
config in ActionFormer's spelling, sentinels included (:mod:`tal_lab.config.sentinels`), so the
official tools read the file, with its ``recipe`` (:mod:`tal_lab.config.dialects`), so that
:func:`tal_lab.config.load_config` reads it back, in the same dialect, to an equal config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from tal_lab.config.defaults import DERIVED_MODEL_KEYS
from tal_lab.config.errors import ConfigError
from tal_lab.config.frozen import thaw
from tal_lab.config.sentinels import to_reference
from tal_lab.core.atomic_io import write_text_atomic

__all__ = ["read_source", "reference_dict", "dump_config"]


def read_source(source: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain, mutable copy of a config source: a YAML file, a mapping, or None (empty).

    YAML is read with ``yaml.safe_load``: opening a config never runs code from it.

    Raises:
        FileNotFoundError: ``source`` names a file that does not exist.
        ConfigError: the file is not valid YAML or its top level is not a mapping.
    """
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return thaw(source)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
    return thaw(loaded)


def reference_dict(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config as ActionFormer writes it: a plain dict without the derived model keys
    (:data:`~tal_lab.config.defaults.DERIVED_MODEL_KEYS`), sentinels in the reference's spelling."""
    out = thaw(cfg)
    out["model"] = {k: v for k, v in out["model"].items() if k not in DERIVED_MODEL_KEYS}
    return to_reference(out)


def dump_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    """Write a resolved config as YAML in ActionFormer's spelling, atomically."""
    write_text_atomic(path, yaml.safe_dump(reference_dict(cfg), sort_keys=False))
