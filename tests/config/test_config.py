"""Config loading: ActionFormer's schema and defaults, overrides, validation at the edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tal_lab.config import (
    DEFAULTS,
    PAPER_CONFIGURATIONS,
    ConfigError,
    apply_overrides,
    dump_config,
    load_config,
    max_div_factor,
    paper_configuration,
    thaw,
)
from tal_lab.data.synthetic_spec import SYNTHETIC_PRESETS

# ActionFormer's configs/thumos_i3d.yaml (commit 61ea7eb), as a user would have it on disk.
THUMOS_I3D_YAML = """\
dataset_name: thumos
train_split: ['validation']
val_split: ['test']
dataset: {
  json_file: ./data/thumos/annotations/thumos14.json,
  feat_folder: ./data/thumos/i3d_features,
  file_prefix: ~,
  file_ext: .npy,
  num_classes: 20,
  input_dim: 2048,
  feat_stride: 4,
  num_frames: 16,
  # serve as data augmentation
  trunc_thresh: 0.5,
  crop_ratio: [0.9, 1.0],
  max_seq_len: 2304,
}
model: {
  fpn_type: identity,
  max_buffer_len_factor: 6.0,
  n_mha_win_size: 19,
}
opt: {
  learning_rate: 0.0001,
  epochs: 30,
  weight_decay: 0.05,
}
loader: {
  batch_size: 2,
}
train_cfg: {
  init_loss_norm: 100,
  clip_grad_l2norm: 1.0,
  cls_prior_prob: 0.01,
  center_sample: radius,
  center_sample_radius: 1.5,
}
test_cfg: {
  voting_thresh: 0.7,
  pre_nms_topk: 2000,
  max_seg_num: 200,
  min_score: 0.001,
  multiclass_nms: True,
}
output_folder: ./ckpt/
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


@pytest.mark.needs_shared
def test_official_thumos_yaml_merges_to_the_reference_config(tmp_path: Path, shared_dir: Path) -> None:
    cfg = load_config(_write(tmp_path, THUMOS_I3D_YAML))
    reference = json.loads((shared_dir / "reference/keys/full_configs.json").read_text())["configs"]
    expected = reference["af_convtransformer_identity"]
    for section in ("dataset", "opt", "loader", "train_cfg", "test_cfg"):
        for key, value in expected[section].items():
            assert cfg[section][key] == value, f"{section}.{key}"
    for key, value in expected["model"].items():
        if isinstance(value, dict):  # model.train_cfg / test_cfg: tal_lab adds recipe options to them
            assert {k: cfg["model"][key][k] for k in value} == value, f"model.{key}"
        else:
            assert cfg["model"][key] == value, f"model.{key}"
    for key in ("dataset_name", "train_split", "val_split", "init_rand_seed", "output_folder"):
        assert cfg[key] == expected[key]


def test_defaults_are_never_shared_by_reference() -> None:
    first = thaw(load_config())
    first["model"]["regression_range"][0][1] = 999
    first["train_cfg"]["head_empty_cls"].append(3)
    second = load_config()
    assert second["model"]["regression_range"][0][1] == 4
    assert second["train_cfg"]["head_empty_cls"] == []
    assert DEFAULTS["model"]["regression_range"][0][1] == 4
    with pytest.raises(TypeError, match="apply_overrides"):
        DEFAULTS["model"]["regression_range"][0][1] = 999  # type: ignore[index]


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.backbone_typ'"):
        load_config({"model": {"backbone_typ": "sgp"}})
    with pytest.raises(ConfigError, match="unknown config key 'foo'"):
        load_config({"foo": 1})


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"model": {"backbone_type": "lstm"}}, "model.backbone_type"),
        ({"model": {"fpn_type": "bifpn"}}, "model.fpn_type"),
        ({"dataset": {"max_seq_len": 2300}, "model": {"n_mha_win_size": 19}}, "dataset.max_seq_len"),
        ({"opt": {"epochs": 0}}, "opt.epochs"),
        ({"train_cfg": {"cls_prior_prob": 1.5}}, "train_cfg.cls_prior_prob"),
        ({"model": {"regression_range": [[0, 4]]}}, "model.regression_range"),
        ({"model": {"fpn_dim": 256}}, "model.fpn_dim"),
        ({"model": {"backbone_type": "sgp", "embd_dim": 40, "fpn_dim": 40}}, "model.embd_dim"),
        ({"test_cfg": {"nms_method": "fancy"}}, "test_cfg.nms_method"),
    ],
)
def test_impossible_values_name_the_key(override: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(override)


def test_yaml_is_read_with_a_safe_loader(tmp_path: Path) -> None:
    evil = "dataset_name: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, evil))


def test_overrides_as_strings_and_derived_model_sections(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, THUMOS_I3D_YAML), ["train_cfg.loss_weight=2", "model.backbone_type=sgp"])
    assert cfg["train_cfg"]["loss_weight"] == 2
    assert cfg["model"]["train_cfg"]["loss_weight"] == 2
    assert cfg["model"]["backbone_type"] == "sgp"
    again = apply_overrides(cfg, ["train_cfg.loss_weight=0.5", "dataset.input_dim=64"])
    assert again["model"]["train_cfg"]["loss_weight"] == 0.5
    assert again["model"]["input_dim"] == 64
    assert cfg["train_cfg"]["loss_weight"] == 2  # the original is untouched
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["model.backbone_type"])


def test_dump_and_reload_round_trip(tmp_path: Path) -> None:
    cfg = paper_configuration("E", load_config(_write(tmp_path, THUMOS_I3D_YAML)))
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    assert "train_cfg" not in yaml.safe_load(out.read_text())["model"]
    assert load_config(out) == cfg


def test_paper_configurations() -> None:
    assert set(PAPER_CONFIGURATIONS) == {"original", "A", "B", "C", "D", "E"}
    e = paper_configuration("E")
    assert (e["model"]["backbone_type"], e["model"]["fpn_type"]) == ("sgp", "identity")
    with pytest.raises(ConfigError, match="unknown paper configuration"):
        paper_configuration("F")


def test_max_div_factor_matches_actionformer() -> None:
    cfg = load_config({"model": {"n_mha_win_size": 19}})
    # level 5: stride 32 times 2 * (19 // 2) = 18 -> 576; 2304 = 4 * 576
    assert max_div_factor(cfg["model"]) == 576
    conv = load_config({"model": {"backbone_type": "conv"}})
    assert max_div_factor(conv["model"]) == 32


def test_the_synthetic_preset_is_a_name_the_generator_owns() -> None:
    assert DEFAULTS["dataset"]["synthetic"]["preset"] in SYNTHETIC_PRESETS
    for bad in ("", 3, None):
        with pytest.raises(ConfigError, match=r"dataset\.synthetic\.preset"):
            load_config({"dataset": {"synthetic": {"preset": bad}}})
