"""Dialects: a config is read in the language of the repository it came from.

ActionFormer (commit 61ea7eb) and TriDet (commit 764b816, a fork of it) share one YAML schema,
but a TriDet config relies on TriDet's own defaults (SGP backbone, Trident head, ``k``,
``iou_weight_power``, ``eta_min``, ...) and TriDet's recipe differs from ActionFormer's in a
few places. tal_lab resolves both into one schema, the union of the two repositories' keys and
tal_lab's own, and records the dialect it used as ``cfg['recipe']``:

* which dialect (:func:`choose_recipe`): an explicit one (the top-level ``recipe`` key, or
  ``recipe=`` in the overrides, which ``tal-lab train/eval --recipe`` sets), else the keys: a
  config holding keys only TriDet has (:data:`TRIDET_ONLY_KEYS`, or TriDet's ``model_name`` /
  ``SGP`` spelling) is TriDet's, any other is ActionFormer's; one holding keys only
  ActionFormer has *and* keys only TriDet has cannot be read without guessing and is refused.
* which defaults fill it: :data:`tal_lab.config.defaults.RECIPE_DEFAULTS`.
* TriDet's spellings, read into tal_lab's (:func:`translate_spellings`): ``backbone_type: SGP``
  is ``sgp``; ``use_trident_head: true / false`` is ``head_type: trident / actionformer``.
* where the two recipes differ, a named option with one owner, defaulted per dialect
  (:data:`RECIPE_OPTIONS`); docs/recipes.md lists them per official config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tal_lab.config.errors import ConfigError

__all__ = [
    "RECIPES",
    "ACTIONFORMER",
    "TRIDET",
    "ACTIONFORMER_ONLY_KEYS",
    "TRIDET_ONLY_KEYS",
    "RecipeOption",
    "RECIPE_OPTIONS",
    "TRUNC_WINDOWS",
    "GT_FILTERS",
    "VOTING_WEIGHTS",
    "EVAL_PAD_DIVISORS",
    "RecipeChoice",
    "choose_recipe",
    "translate_spellings",
]

ACTIONFORMER: str = "actionformer"
TRIDET: str = "tridet"
RECIPES: tuple[str, ...] = (ACTIONFORMER, TRIDET)

# Keys of one repository's defaults and official YAMLs that the other never has
# (tests/config/test_dialects.py derives both lists from official_merged_configs.json).
ACTIONFORMER_ONLY_KEYS: tuple[str, ...] = (
    "model.n_head", "model.n_mha_win_size", "model.use_rel_pe", "model.fpn_start_level",
)
TRIDET_ONLY_KEYS: tuple[str, ...] = (
    "model.use_trident_head", "model.n_sgp_win_size", "model.sgp_mlp_dim", "model.k", "model.init_conv_vars",
    "model.num_bins", "model.iou_weight_power", "model.input_noise", "model.downsample_type",
    "model.boudary_kernel_size", "opt.eta_min", "dataset.backbone_type",
)

# TriDet's spellings of what tal_lab names otherwise.
_TRIDET_MODEL_NAME = "TriDet"
_TRIDET_SGP = "SGP"
_TRIDENT_HEAD = {True: "trident", False: "actionformer"}  # model.use_trident_head -> model.head_type

# The recipe options' choices (each option's first choice is ActionFormer's, the second TriDet's).
TRUNC_WINDOWS: tuple[str, ...] = ("widened", "clipped")
GT_FILTERS: tuple[str, ...] = ("duplicates_and_short", "duplicates")
VOTING_WEIGHTS: tuple[str, ...] = ("score_iou", "score")
EVAL_PAD_DIVISORS: tuple[str, ...] = ("attention_window", "sgp_window")


@dataclass(frozen=True)
class RecipeOption:
    """One place where the two recipes differ, as a config key with one owner.

    Attributes:
        key: the dotted config key.
        choices: the accepted values.
        defaults: the value each dialect fills in.
        meaning: what each choice does (docs and error messages).
    """

    key: str
    choices: tuple[str, ...]
    defaults: Mapping[str, str]
    meaning: str


RECIPE_OPTIONS: tuple[RecipeOption, ...] = (
    RecipeOption("dataset.trunc_window", TRUNC_WINDOWS, {ACTIONFORMER: "widened", TRIDET: "clipped"},
                 "training truncation: an action's overlap with the random window, and its clipped "
                 "segment, use the window widened by the half-window offset on both sides "
                 "('widened', ActionFormer) or the window itself ('clipped', TriDet)"),
    RecipeOption("dataset.gt_filter", GT_FILTERS, {ACTIONFORMER: "duplicates_and_short", TRIDET: "duplicates"},
                 "the annotation clean-up of datasets that drop repeated annotations (ActivityNet, HACS): "
                 "also drop instances shorter than 1e-3 s ('duplicates_and_short', ActionFormer) or drop "
                 "only repeats, keeping every instance however short ('duplicates', TriDet)"),
    RecipeOption("test_cfg.voting_weights", VOTING_WEIGHTS, {ACTIONFORMER: "score_iou", TRIDET: "score"},
                 "segment voting after class-agnostic NMS weighs each overlapping candidate by "
                 "score x IoU ('score_iou', ActionFormer) or by its score alone ('score', TriDet)"),
    RecipeOption("model.eval_pad_divisor", EVAL_PAD_DIVISORS,
                 {ACTIONFORMER: "attention_window", TRIDET: "sgp_window"},
                 "an inference video longer than max_seq_len is padded to a multiple of the largest "
                 "stride x 2 * (w // 2) over local-attention levels, else the top stride "
                 "('attention_window', ActionFormer), or of the largest stride x n_sgp_win_size over "
                 "levels whose window exceeds 1, else the top stride ('sgp_window', TriDet)"),
)


@dataclass(frozen=True)
class RecipeChoice:
    """The dialect a config is read in, and why (logged at load)."""

    recipe: str
    reason: str


def _present(source: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Those of the dotted ``keys`` that ``source`` holds."""
    found = []
    for dotted in keys:
        section, _, name = dotted.rpartition(".")
        node = source.get(section) if section else source
        if isinstance(node, Mapping) and name in node:
            found.append(dotted)
    return found


def _explicit(source: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> str | None:
    """The recipe the config or the overrides name (None: neither does)."""
    in_source, in_overrides = source.get("recipe"), (overrides or {}).get("recipe")
    for where, value in (("the config's 'recipe'", in_source), ("the override recipe=", in_overrides)):
        if value is not None and value not in RECIPES:
            raise ConfigError(f"config key 'recipe': {value!r} ({where}) is not one of {RECIPES}")
    if in_source is not None and in_overrides is not None and in_source != in_overrides:
        raise ConfigError(f"config key 'recipe': the config says {in_source!r} but the overrides say "
                          f"{in_overrides!r}")
    return in_overrides if in_overrides is not None else in_source


def choose_recipe(source: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> RecipeChoice:
    """The dialect of a plain config ``source`` (before any defaults) and its overrides.

    Raises:
        ConfigError: an unknown or conflicting explicit recipe, or, without one, a config holding
            keys only ActionFormer has and keys only TriDet has (both named).
    """
    explicit = _explicit(source, overrides)
    if explicit is not None:
        return RecipeChoice(explicit, "set explicitly by 'recipe'")
    af_keys = _present(source, ACTIONFORMER_ONLY_KEYS)
    tridet_keys = _present(source, TRIDET_ONLY_KEYS)
    model = source.get("model") if isinstance(source.get("model"), Mapping) else {}
    if source.get("model_name") == _TRIDET_MODEL_NAME:
        tridet_keys.append(f"model_name: {_TRIDET_MODEL_NAME}")
    if model.get("backbone_type") == _TRIDET_SGP:
        tridet_keys.append(f"model.backbone_type: {_TRIDET_SGP}")
    if af_keys and tridet_keys:
        raise ConfigError(
            f"the config mixes keys only ActionFormer has ({', '.join(af_keys)}) with keys only TriDet has "
            f"({', '.join(tridet_keys)}), so its dialect cannot be told from its keys; add 'recipe: "
            f"actionformer' (ActionFormer's defaults and recipe; tal_lab's own configs before recipes "
            f"existed) or 'recipe: tridet' at the top level (or pass --recipe)")
    if tridet_keys:
        return RecipeChoice(TRIDET, f"it has keys only TriDet has: {', '.join(tridet_keys)}")
    return RecipeChoice(ACTIONFORMER, "it has no key only TriDet has")


def translate_spellings(cfg: dict[str, Any]) -> dict[str, Any]:
    """TriDet's spellings in a plain config (source or overrides) as tal_lab's, in place.

    Raises:
        ConfigError: ``use_trident_head`` that is not a bool, or that contradicts ``head_type``.
    """
    model = cfg.get("model")
    if not isinstance(model, dict):
        return cfg
    if model.get("backbone_type") == _TRIDET_SGP:
        model["backbone_type"] = "sgp"
    if "use_trident_head" in model:
        flag = model.pop("use_trident_head")
        if not isinstance(flag, bool):
            raise ConfigError(f"config key 'model.use_trident_head' must be true or false, got {flag!r}")
        head = _TRIDENT_HEAD[flag]
        if model.setdefault("head_type", head) != head:
            raise ConfigError(f"config keys 'model.use_trident_head: {flag}' and 'model.head_type: "
                              f"{model['head_type']}' contradict each other (TriDet's flag means head_type {head})")
    return cfg
