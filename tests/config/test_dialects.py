"""Dialects: a config is read in its repository's dialect, said at load, never guessed silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from tal_lab.config import (DEFAULTS, RECIPE_OPTIONS, TRIDET_DEFAULTS, ConfigError, apply_overrides, dump_config,
                            load_config, thaw)
from tal_lab.config.dialects import ACTIONFORMER_ONLY_KEYS, TRIDET_ONLY_KEYS, choose_recipe
from tal_lab.config.sentinels import to_reference

# A TriDet-style config that names only TriDet keys, and the sizes an SGP model needs.
TRIDET_MODEL = {"n_sgp_win_size": 3, "sgp_mlp_dim": 32, "embd_dim": 16, "fpn_dim": 16, "head_dim": 16,
                "backbone_arch": [2, 1, 2], "regression_range": [[0, 4], [4, 8], [8, 10000]]}
TINY_DATA = {"input_dim": 8, "num_classes": 3, "max_seq_len": 64}
TINY_SIZES = {k: v for k, v in TRIDET_MODEL.items() if k not in ("n_sgp_win_size", "sgp_mlp_dim")}


def _dotted_keys(cfg: dict[str, Any]) -> set[str]:
    """'section.key' for the keys of each section, 'key' for top-level values (the sections'
    own mappings, model.train_cfg / test_cfg, count as one key)."""
    return {f"{name}.{key}" if isinstance(section, dict) else name
            for name, section in cfg.items() for key in (section if isinstance(section, dict) else [name])}


@pytest.mark.needs_shared
def test_the_one_repository_keys_are_the_official_ones(shared_dir: Path) -> None:
    """Keys of one repository's defaults and YAMLs that the other never has, from the merged configs."""
    merged = json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())
    af = _dotted_keys(merged["actionformer_defaults"]).union(*map(_dotted_keys, merged["actionformer"].values()))
    tridet = _dotted_keys(merged["tridet_defaults"]).union(*map(_dotted_keys, merged["tridet"].values()))
    assert sorted(af - tridet) == sorted(ACTIONFORMER_ONLY_KEYS)
    assert sorted(tridet - af) == sorted(TRIDET_ONLY_KEYS)


@pytest.mark.needs_shared
def test_tridet_defaults_are_tridets(shared_dir: Path) -> None:
    """Every key of TriDet's defaults has its value there, written in the reference's spelling,
    but for the two spellings tal_lab reads (TriDet's 'SGP' is the registered 'sgp'; its
    use_trident_head is model.head_type)."""
    merged = json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())
    written = to_reference(thaw(TRIDET_DEFAULTS))
    spelled = {"model.backbone_type": "sgp", "model.use_trident_head": None}
    for section, values in merged["tridet_defaults"].items():
        if not isinstance(values, dict):
            assert written[section] == values, section
            continue
        for key, value in values.items():
            if f"{section}.{key}" in spelled:
                continue
            assert written[section][key] == value, f"{section}.{key}"
    assert written["model"]["backbone_type"] == spelled["model.backbone_type"]
    assert written["model"]["head_type"] == "trident"  # TriDet's use_trident_head: True
    assert written["model"]["sgp_mlp_dim"] is None  # TriDet defines none: the SGP backbone requires it


def test_each_recipe_option_has_its_dialect_default() -> None:
    for option in RECIPE_OPTIONS:
        section, name = option.key.split(".")
        assert DEFAULTS[section][name] == option.defaults["actionformer"], option.key
        assert TRIDET_DEFAULTS[section][name] == option.defaults["tridet"], option.key
        assert set(option.defaults.values()) == set(option.choices), option.key


def test_tridet_keys_select_tridets_defaults_and_the_choice_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tal_lab.config.loading"):
        cfg = load_config({"dataset": TINY_DATA, "model": TRIDET_MODEL})
    assert cfg["recipe"] == "tridet"
    assert (cfg["model"]["backbone_type"], cfg["model"]["head_type"]) == ("sgp", "trident")
    assert (cfg["model"]["k"], cfg["model"]["iou_weight_power"], cfg["opt"]["eta_min"]) == (1.5, 1.0, 1e-8)
    assert cfg["test_cfg"]["voting_weights"] == "score" and cfg["dataset"]["trunc_window"] == "clipped"
    assert "config mapping: read as tridet's recipe (it has keys only TriDet has: model.n_sgp_win_size, " \
           "model.sgp_mlp_dim)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tal_lab.config.loading"):
        plain = load_config({"model": {"backbone_type": "conv"}})
    assert plain["recipe"] == "actionformer" and plain["model"]["head_type"] == "actionformer"
    assert "read as actionformer's recipe (it has no key only TriDet has)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tal_lab.config.loading"):
        assert load_config(cfg) == cfg  # a loaded config passed on names its recipe: said once
    assert caplog.text == ""


def test_tridets_spellings_and_explicit_recipes() -> None:
    spelled = load_config({"dataset": TINY_DATA, "model": {**TRIDET_MODEL, "backbone_type": "SGP",
                                                           "use_trident_head": False}})
    assert (spelled["model"]["backbone_type"], spelled["model"]["head_type"]) == ("sgp", "actionformer")
    assert "use_trident_head" not in spelled["model"]
    assert choose_recipe({"model_name": "TriDet"}).recipe == "tridet"
    assert choose_recipe({"model": {"backbone_type": "SGP"}}).recipe == "tridet"
    named = load_config({"recipe": "tridet", "dataset": TINY_DATA, "model": {"n_sgp_win_size": 3, "sgp_mlp_dim": 32,
                                                                            **TINY_SIZES}})
    assert named["recipe"] == "tridet" and named["model"]["backbone_type"] == "sgp"
    by_override = load_config({"dataset": TINY_DATA, "model": {"n_sgp_win_size": 3, "sgp_mlp_dim": 32,
                                                              **TINY_SIZES}}, ["recipe=actionformer"])
    assert by_override["recipe"] == "actionformer" and by_override["model"]["backbone_type"] == "convTransformer"


@pytest.mark.parametrize(
    ("source", "overrides", "message"),
    [
        ({"model": {"n_mha_win_size": 9, "k": 2, "num_bins": 8}}, None,
         r"mixes keys only ActionFormer has \(model\.n_mha_win_size\) with keys only TriDet has "
         r"\(model\.k, model\.num_bins\).*add 'recipe: actionformer'"),
        ({"model": {"n_head": 4}, "model_name": "TriDet"}, None, r"model\.n_head\) with .*model_name: TriDet"),
        ({"recipe": "mmaction"}, None, r"config key 'recipe': 'mmaction'"),
        ({"recipe": "tridet"}, ["recipe=actionformer"], r"the config says 'tridet' but the overrides say"),
        ({"dataset": TINY_DATA, "model": {**TRIDET_MODEL, "use_trident_head": "yes"}}, None,
         r"'model\.use_trident_head' must be true or false"),
        ({"dataset": TINY_DATA, "model": {**TRIDET_MODEL, "use_trident_head": True, "head_type": "actionformer"}},
         None, r"contradict each other"),
        ({"recipe": "tridet", "dataset": TINY_DATA, "model": TINY_SIZES}, None,
         r"'model\.sgp_mlp_dim': is required by the SGP backbone"),
        ({"recipe": "tridet", "dataset": TINY_DATA, "model": {**TINY_SIZES, "sgp_mlp_dim": 32}}, None,
         r"'model\.n_sgp_win_size'.*TriDet's default -1 builds no SGP block"),
    ],
)
def test_configs_that_cannot_be_read_without_guessing_are_refused(source: dict, overrides: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(source, overrides)


def test_a_loaded_config_keeps_its_dialect(tmp_path: Path) -> None:
    cfg = load_config({"dataset": TINY_DATA, "model": TRIDET_MODEL})
    with pytest.raises(ConfigError, match=r"a loaded config keeps its dialect \('tridet'"):
        apply_overrides(cfg, {"recipe": "actionformer"})
    changed = apply_overrides(cfg, {"model": {"n_mha_win_size": 5}})  # an ActionFormer key: fine, the recipe is named
    assert changed["recipe"] == "tridet" and changed["opt"]["eta_min"] == 1e-8
    out = tmp_path / "resolved.yaml"
    dump_config(changed, out)
    written = yaml.safe_load(out.read_text())
    assert written["recipe"] == "tridet"
    assert load_config(out) == changed
