"""ActionFormer's sentinels: read in either spelling, explicit inside, written back as the reference reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tal_lab.config import (ADAPTIVE_LOSS_WEIGHT, DEFAULTS, GLOBAL_ATTENTION, dump_config, load_config,
                            max_div_factor, reference_dict)

# ActionFormer's anet_tsp.yaml model (global attention at the top level) with every sentinel set.
REFERENCE_YAML = """\
dataset_name: anet
dataset: {num_classes: 1, input_dim: 512, max_seq_len: 768}
model: {n_mha_win_size: [7, 7, 7, 7, 7, -1], embd_dim: 256, fpn_dim: 256, head_dim: 256}
train_cfg: {clip_grad_l2norm: -1, loss_weight: -1}
test_cfg: {voting_thresh: 0, multiclass_nms: false}
"""


def test_reference_sentinels_become_explicit_and_are_written_back(tmp_path: Path) -> None:
    source = tmp_path / "anet.yaml"
    source.write_text(REFERENCE_YAML)
    cfg = load_config(source)
    assert cfg["model"]["n_mha_win_size"] == [7, 7, 7, 7, 7, GLOBAL_ATTENTION]
    assert cfg["train_cfg"]["clip_grad_l2norm"] is None
    assert cfg["train_cfg"]["loss_weight"] == ADAPTIVE_LOSS_WEIGHT == cfg["model"]["train_cfg"]["loss_weight"]
    assert cfg["test_cfg"]["voting_thresh"] is None
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    written = yaml.safe_load(out.read_text())
    assert written["model"]["n_mha_win_size"] == [7, 7, 7, 7, 7, -1]
    assert (written["train_cfg"]["clip_grad_l2norm"], written["train_cfg"]["loss_weight"]) == (-1, -1)
    assert written["test_cfg"]["voting_thresh"] == 0.0
    assert load_config(out) == cfg


def test_both_spellings_give_the_same_config() -> None:
    reference = load_config({"model": {"n_mha_win_size": -1}, "train_cfg": {"clip_grad_l2norm": -1,
                                                                           "loss_weight": 0.0}})
    explicit = load_config({"model": {"n_mha_win_size": "global"}, "train_cfg": {"clip_grad_l2norm": None,
                                                                                "loss_weight": "adaptive"}})
    assert reference == explicit == load_config({"train_cfg": {"loss_weight": "adaptive"}})
    assert DEFAULTS["model"]["n_mha_win_size"] == GLOBAL_ATTENTION and DEFAULTS["train_cfg"]["clip_grad_l2norm"] is None


def test_global_attention_needs_no_divisor() -> None:
    assert max_div_factor(load_config()["model"]) == 32  # 6 levels, stride 32 at the top, no window
    mixed = load_config({"dataset": {"max_seq_len": 768},
                         "model": {"n_mha_win_size": [7, 7, 7, 7, 7, -1]}})["model"]
    assert max_div_factor(mixed) == 16 * 6  # level 4: stride 16 x 2 * (7 // 2)


@pytest.mark.parametrize(("key", "value"), [("model.n_mha_win_size", 0), ("model.n_mha_win_size", "local"),
                                            ("train_cfg.loss_weight", float("inf")),
                                            ("train_cfg.clip_grad_l2norm", "off"),
                                            ("test_cfg.voting_thresh", 1.5)])
def test_values_that_are_neither_spelling_name_the_key(key: str, value: object) -> None:
    section, name = key.split(".")
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_config({section: {name: value}})


@pytest.mark.needs_shared
def test_the_defaults_are_written_as_actionformer_s(shared_dir: Path) -> None:
    merged = json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())
    written = reference_dict(load_config())
    for section, values in merged["actionformer_defaults"].items():
        if isinstance(values, dict):
            assert {k: written[section][k] for k in values} == values, section
        else:
            assert written[section] == values, section


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["thumos_i3d.yaml", "anet_tsp.yaml", "anet_i3d.yaml", "epic_slowfast_verb.yaml",
                                  "epic_slowfast_noun.yaml"])
def test_official_yamls_are_written_back_as_actionformer_merges_them(shared_dir: Path, name: str) -> None:
    """Every key ActionFormer's loader gives the official YAML is written with its value there
    (the model copies of dataset / train_cfg / test_cfg values are derived, not written)."""
    merged = json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())
    expected = merged["actionformer"][name]
    written = reference_dict(load_config(shared_dir / "reference/configs/actionformer" / name))
    derived = {"input_dim", "num_classes", "max_seq_len", "train_cfg", "test_cfg"}
    for section, values in expected.items():
        if isinstance(values, dict):
            keys = [k for k in values if not (section == "model" and k in derived)]
            assert {k: written[section][k] for k in keys} == {k: values[k] for k in keys}, section
        else:
            assert written[section] == values, section
