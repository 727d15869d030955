"""Loading a config: ActionFormer's YAML schema read, validated once and frozen, at the edge.

A config is a nested mapping in ActionFormer's schema (``dataset``, ``model``, ``train_cfg``,
``test_cfg``, ``opt``, ``loader``, ...), read in the dialect of the repository it came from
(ActionFormer's or TriDet's, :mod:`tal_lab.config.dialects`), so every official
``configs/*.yaml`` of both loads unchanged and its keys mean what they mean there. tal_lab adds
a few keys of its own, listed with their defaults in :data:`tal_lab.config.DEFAULTS`.

The loaded config is immutable (:mod:`tal_lab.config.frozen`): a changed config is a new one,
made by :func:`tal_lab.config.apply_overrides`, which validates it again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from tal_lab.config.dialects import choose_recipe
from tal_lab.config.frozen import FrozenDict, thaw
from tal_lab.config.io import read_source
from tal_lab.config.overrides import parse_overrides
from tal_lab.config.paths import resolve_data_paths
from tal_lab.config.resolve import resolve

__all__ = ["load_config"]

logger = logging.getLogger(__name__)


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> FrozenDict:
    """Load a config (YAML path or mapping) over its dialect's defaults and validate it.

    The dialect (``recipe``: 'actionformer' or 'tridet') is the one ``source`` or ``overrides``
    name, else the one its keys show (:func:`tal_lab.config.dialects.choose_recipe`); it is
    logged (``logging.INFO``; ``DEBUG`` for a mapping that names it, such as a loaded config)
    and kept as ``cfg['recipe']``.

    Args:
        source: a YAML file (read with ``yaml.safe_load``: opening a config never runs code from
            it), a mapping in the same schema (e.g. a loaded config), or None for the defaults.
        overrides: a nested mapping or ``key=value`` strings applied after ``source``
            (``recipe=tridet`` names the dialect, as ``tal-lab train --recipe tridet`` does).

    Returns:
        A new frozen config: the dialect's defaults, updated by ``source`` and ``overrides``, with
        ActionFormer's sentinels as explicit values (``n_mha_win_size: 'global'``,
        ``clip_grad_l2norm: None``, ``loss_weight: 'adaptive'``, ``voting_thresh: None``), and
        ``model.input_dim``, ``model.num_classes``, ``model.max_seq_len``, ``model.train_cfg``
        and ``model.test_cfg`` filled from ``dataset`` / ``train_cfg`` / ``test_cfg`` as the
        reference does (as copies).

    Raises:
        ConfigError: unknown keys or impossible values, naming the dotted key; a config mixing
            keys only ActionFormer has with keys only TriDet has and naming no recipe.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    user = read_source(source)
    if isinstance(source, (str, Path)):
        user = resolve_data_paths(user, Path(source))  # paths_relative_to: config (tal_lab.config.paths)
    extra = thaw(overrides) if overrides else None
    choice = choose_recipe(user, extra)
    from_file = isinstance(source, (str, Path))
    where = str(source) if from_file else "config mapping" if source is not None else "defaults"
    # a mapping that names its recipe is mostly a loaded config passed on: said once, when it was read
    level = logging.DEBUG if not from_file and "recipe" in user else logging.INFO
    logger.log(level, "%s: read as %s's recipe (%s)", where, choice.recipe, choice.reason)
    return resolve(user, choice.recipe, extra)
