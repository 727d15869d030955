"""A changed config is a new one: apply_overrides validates it and leaves the old one as it was."""

from __future__ import annotations

import pytest

from tal_lab.config import ConfigError, FrozenDict, apply_overrides, load_config, parse_overrides, thaw


def test_apply_overrides_returns_a_new_validated_config() -> None:
    cfg = load_config({"model": {"n_mha_win_size": 19}})
    before = thaw(cfg)
    changed = apply_overrides(cfg, {"model": {"backbone_type": "conv"}, "dataset": {"input_dim": 64}})
    assert isinstance(changed, FrozenDict) and changed is not cfg
    assert changed["model"]["backbone_type"] == "conv"
    assert changed["model"]["input_dim"] == 64  # derived again from the changed dataset section
    assert cfg == before
    same = apply_overrides(cfg, {})
    assert same == cfg and same is not cfg


def test_overrides_as_key_value_strings_are_yaml_values() -> None:
    assert parse_overrides(["model.n_mha_win_size=[5, 5, 5]", "opt.epochs=3", "test_cfg.ext_score_file="]) == {
        "model": {"n_mha_win_size": [5, 5, 5]}, "opt": {"epochs": 3}, "test_cfg": {"ext_score_file": None}}
    cfg = apply_overrides(load_config(), ["train_cfg.loss_weight=adaptive", "model.n_mha_win_size=global"])
    assert cfg["train_cfg"]["loss_weight"] == "adaptive" and cfg["model"]["n_mha_win_size"] == "global"
    with pytest.raises(ConfigError, match="conflicts with another override"):
        parse_overrides(["opt=1", "opt.epochs=2"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": {"embd_dimm": 8}}, r"unknown config key 'model\.embd_dimm'"),
        (["engine.ema_decay=1.5"], r"config key 'engine\.ema_decay'"),
        ({"opt": 3}, r"config key 'opt' must be a mapping"),
        ({"model": {"backbone_type": "lstm"}}, r"config key 'model\.backbone_type'"),
        ({"train_cfg": {"loss_weight": "auto"}}, r"config key 'train_cfg\.loss_weight'"),
        ({"model": {"input_dim": 64}}, r"'model\.input_dim' is derived from 'dataset\.input_dim'"),
        ({"model": {"train_cfg": {"droppath": 0.0}}}, r"'model\.train_cfg' is derived from 'train_cfg'"),
    ],
)
def test_an_invalid_override_names_the_dotted_key(overrides: object, message: str) -> None:
    cfg = load_config()
    before = thaw(cfg)
    with pytest.raises(ConfigError, match=message):
        apply_overrides(cfg, overrides)  # type: ignore[arg-type]
    assert cfg == before
