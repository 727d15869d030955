"""The built-in published recipes are the official ones: ActionFormer 61ea7eb and TriDet 764b816."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tal_lab.config import load_config, reference_dict
from tal_lab.config.published import DATASET_VARIANTS, PUBLISHED, published_config

ENTRIES = [(recipe, name) for recipe, entries in PUBLISHED.items() for name in entries]


@pytest.mark.needs_shared
def test_every_official_yaml_is_published(shared_dir: Path) -> None:
    on_disk = {(p.parent.name, p.stem) for p in (shared_dir / "reference/configs").glob("*/*.yaml")}
    assert set(ENTRIES) == on_disk


@pytest.mark.needs_shared
@pytest.mark.parametrize(("recipe", "name"), ENTRIES)
def test_published_recipe_is_the_official_yaml(shared_dir: Path, recipe: str, name: str) -> None:
    """Loading the entry gives the config loading the YAML gives, and every key of the official
    merge but TriDet's two spellings has its value there (tests/config/test_official_configs.py)."""
    cfg = load_config(published_config(PUBLISHED[recipe][name]["dataset_name"], recipe, name))
    assert cfg == load_config(shared_dir / "reference/configs" / recipe / f"{name}.yaml")
    merged = json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())
    expected, written = merged[recipe][f"{name}.yaml"], reference_dict(cfg)
    for section in ("dataset", "opt", "loader", "train_cfg", "test_cfg"):
        assert {k: written[section][k] for k in expected[section]} == expected[section], section


def test_the_issue_s_activitynet_and_epic_settings() -> None:
    """The 61ea7eb values the older built-in recipe lacked (issue 11)."""
    anet = published_config("anet")
    assert (anet["dataset"]["max_seq_len"], anet["dataset"]["force_upsampling"]) == (192, True)
    assert anet["model"]["n_mha_win_size"] == [7, 7, 7, 7, 7, -1]
    assert (anet["train_cfg"]["init_loss_norm"], anet["train_cfg"]["loss_weight"]) == (200, 2.0)
    assert anet["test_cfg"] == {"voting_thresh": 0.9, "pre_nms_topk": 2000, "max_seg_num": 100, "min_score": 0.001,
                                "multiclass_nms": False, "nms_sigma": 0.75,
                                "ext_score_file": "./data/anet_1.3/annotations/cuhk_val_simp_share.json",
                                "duration_thresh": 0.001}
    assert published_config("epic")["opt"]["epochs"] == 16


def test_published_config_gives_fresh_copies_and_names_what_it_lacks() -> None:
    first = published_config("anet")
    first["dataset"]["num_classes"] = 5
    assert published_config("anet")["dataset"]["num_classes"] == 1
    assert published_config("thumos", "tridet")["recipe"] == "tridet"
    assert published_config("epic", variant="epic_slowfast_noun")["dataset"]["num_classes"] == 300
    for dataset in ("thumos", "anet", "epic"):
        assert all(dataset in variants for variants in DATASET_VARIANTS.values())
    with pytest.raises(ValueError, match="no published ActionFormer settings for dataset 'synthetic'"):
        published_config("synthetic")
    with pytest.raises(ValueError, match="no published TriDet settings for dataset 'ego4d'"):
        published_config("ego4d", "tridet")
    with pytest.raises(ValueError, match="'hacs_i3d' is a 'hacs' recipe, not 'thumos'"):
        published_config("thumos", "tridet", "hacs_i3d")
    with pytest.raises(ValueError, match="ActionFormer has no official config 'hacs_i3d'"):
        published_config("thumos", "actionformer", "hacs_i3d")
    with pytest.raises(TypeError, match="apply_overrides"):
        PUBLISHED["actionformer"]["thumos_i3d"]["opt"]["epochs"] = 1  # type: ignore[index]
