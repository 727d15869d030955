"""Loading a config: ActionFormer's YAML schema read, validated once and frozen, at the edge.

A config is a nested mapping in ActionFormer's schema (``dataset``, ``model``, ``train_cfg``,
``test_cfg``, ``opt``, ``loader``, ...), so an official ``configs/*.yaml`` loads unchanged and
its keys mean what they mean there. tal_lab adds a few keys of its own, listed with their
defaults in :data:`tal_lab.config.DEFAULTS`.

The loaded config is immutable (:mod:`tal_lab.config.frozen`): a changed config is a new one,
made by :func:`tal_lab.config.apply_overrides`, which validates it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from tal_lab.config.frozen import FrozenDict, thaw
from tal_lab.config.io import read_source
from tal_lab.config.overrides import parse_overrides
from tal_lab.config.resolve import resolve

__all__ = ["load_config"]


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> FrozenDict:
    """Load an ActionFormer-schema config (YAML path or mapping) over the defaults and validate it.

    Args:
        source: a YAML file (read with ``yaml.safe_load``: opening a config never runs code from
            it), a mapping in the same schema (e.g. a loaded config), or None for the defaults.
        overrides: a nested mapping or ``key=value`` strings applied after ``source``.

    Returns:
        A new frozen config: the defaults, updated by ``source`` and ``overrides``, with
        ActionFormer's sentinels as explicit values (``n_mha_win_size: 'global'``,
        ``clip_grad_l2norm: None``, ``loss_weight: 'adaptive'``, ``voting_thresh: None``), and
        ``model.input_dim``, ``model.num_classes``, ``model.max_seq_len``, ``model.train_cfg``
        and ``model.test_cfg`` filled from ``dataset`` / ``train_cfg`` / ``test_cfg`` as the
        reference does (as copies).

    Raises:
        ConfigError: unknown keys or impossible values, naming the dotted key.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    return resolve(read_source(source), thaw(overrides) if overrides else None)
