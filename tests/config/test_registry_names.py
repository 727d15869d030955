"""Config validation accepts exactly the registered component names (tal_lab.core.registry)."""

from __future__ import annotations

import pytest

from tal_lab.config import DATASET_NAMES, ConfigError, load_config
from tal_lab.core.registry import BACKBONES, HEADS, NECKS
from tal_lab.data.build import DATASETS
from tal_lab.models import ConvBackbone, build_detector

TINY_MODEL = {"embd_dim": 16, "fpn_dim": 16, "head_dim": 16, "backbone_arch": [2, 1, 2],
              "regression_range": [[0, 4], [4, 8], [8, 10000]]}
TINY_DATA = {"input_dim": 8, "num_classes": 3, "max_seq_len": 64}


def test_every_registered_name_validates() -> None:
    for key, registry in (("backbone_type", BACKBONES), ("fpn_type", NECKS), ("head_type", HEADS)):
        for name in registry.names():
            assert load_config({"model": {key: name}})["model"][key] == name


def test_a_registered_backbone_validates_until_it_is_unregistered() -> None:
    name = "test_conv_copy"
    BACKBONES.register(name)(BACKBONES.get("conv"))
    try:
        assert BACKBONES.names()[-1] == name
        cfg = load_config({"dataset": TINY_DATA, "model": {**TINY_MODEL, "backbone_type": name}})
        assert isinstance(build_detector(cfg).backbone, ConvBackbone)
    finally:
        BACKBONES.unregister(name)
    with pytest.raises(ConfigError, match=r"model\.backbone_type.*'test_conv_copy' is not a registered backbone; "
                                          r"known: \['convTransformer', 'conv', 'sgp', 'maxpool'\]"):
        load_config({"dataset": TINY_DATA, "model": {**TINY_MODEL, "backbone_type": name}})


def test_the_dataset_names_are_those_with_a_dataset_class() -> None:
    """dataset_name is checked by the config, below the data layer that maps each to its class."""
    assert set(DATASET_NAMES) == set(DATASETS)
