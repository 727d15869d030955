"""A loaded config cannot drift: it is deep-frozen, yet reads, serialises and pickles like a dict."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any, Callable

import pytest

from tal_lab.config import FrozenDict, FrozenList, apply_overrides, load_config, thaw

CHANGES: list[tuple[str, Callable[[Any], Any]]] = [
    ("set a top-level key", lambda cfg: cfg.__setitem__("dataset_name", "thumos")),
    ("set a section key", lambda cfg: cfg["model"].__setitem__("backbone_type", "conv")),
    ("set a nested list item", lambda cfg: cfg["model"]["regression_range"][0].__setitem__(1, 999)),
    ("append to a list", lambda cfg: cfg["train_cfg"]["head_empty_cls"].append(3)),
    ("extend a list in place", lambda cfg: cfg["devices"].__iadd__(["cpu"])),
    ("update a section", lambda cfg: cfg["opt"].update(epochs=3)),
    ("setdefault", lambda cfg: cfg["engine"].setdefault("new", 1)),
    ("pop", lambda cfg: cfg["loader"].pop("batch_size")),
    ("delete", lambda cfg: cfg["test_cfg"].__delitem__("min_score")),
    ("clear", lambda cfg: cfg["model"]["train_cfg"].clear()),
    ("sort a list", lambda cfg: cfg["model"]["backbone_arch"].sort()),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[what for what, _ in CHANGES])
def test_every_change_in_place_raises(what: str, change: Callable[[Any], Any]) -> None:
    cfg = load_config()
    before = thaw(cfg)
    with pytest.raises(TypeError, match=r"immutable; build a changed one with tal_lab\.config\.apply_overrides"):
        change(cfg)
    assert cfg == before


def test_a_frozen_config_reads_like_the_dict_it_was() -> None:
    cfg = load_config({"model": {"n_mha_win_size": 19}, "dataset": {"max_seq_len": 2304}})
    plain = thaw(cfg)
    assert type(plain) is dict and type(plain["model"]["regression_range"]) is list
    assert cfg == plain and plain == cfg and dict(cfg) == plain
    assert cfg["model"].get("nope", 7) == 7 and "train_cfg" in cfg["model"] and list(cfg) == list(plain)
    assert isinstance(cfg["model"], dict) and isinstance(cfg["model"]["backbone_arch"], list)
    assert cfg["model"]["regression_range"][0] == [0, 4]
    assert json.loads(json.dumps(cfg)) == plain
    assert cfg.to_dict() == plain and cfg.to_dict() is not cfg


def test_pickling_and_copying_keep_it_frozen() -> None:
    """Configs cross processes (DataLoader workers, DDP spawn) by pickling."""
    cfg = load_config()
    for again in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg), copy.copy(cfg)):
        assert again == cfg
        assert isinstance(again, FrozenDict) and isinstance(again["model"], FrozenDict)
        assert isinstance(again["model"]["regression_range"][0], FrozenList)
        with pytest.raises(TypeError):
            again["model"]["embd_dim"] = 8


def test_no_section_is_shared() -> None:
    """ActionFormer puts the train_cfg / test_cfg objects themselves into model; tal_lab copies."""
    cfg = load_config()
    assert cfg["model"]["train_cfg"] == cfg["train_cfg"] and cfg["model"]["train_cfg"] is not cfg["train_cfg"]
    assert cfg["model"]["test_cfg"] == cfg["test_cfg"] and cfg["model"]["test_cfg"] is not cfg["test_cfg"]
    other = load_config()
    assert other["model"]["regression_range"] is not cfg["model"]["regression_range"]
    changed = apply_overrides(cfg, {"train_cfg": {"loss_weight": 2.0}})
    assert changed["model"]["train_cfg"]["loss_weight"] == 2.0 and cfg["model"]["train_cfg"]["loss_weight"] == 1.0


def test_thaw_gives_a_plain_mutable_deep_copy() -> None:
    cfg = load_config()
    plain = thaw(cfg)
    plain["model"]["regression_range"][0][1] = 999
    plain["train_cfg"]["head_empty_cls"].append(1)
    assert cfg["model"]["regression_range"][0][1] == 4 and cfg["train_cfg"]["head_empty_cls"] == []
    assert load_config(plain)["model"]["regression_range"][0][1] == 999
