"""Every official YAML builds the model its own repository builds from it: the same parameter
count and state-dict layout (keys, order, shapes). TriDet's layout is tal_lab's under the
documented key mapping, which for TriDet's full models is the identity (docs/models.md).

The official numbers were measured by building each model with the official code at the commits
of ``../shared/reference/README.md`` (``make_meta_arch(cfg['model_name'], **cfg['model'])`` on the
merged configs of ``official_merged_configs.json``); ``layout`` is the SHA-256 of the lines
``key<TAB>[shape]`` of its ``state_dict()``, in order. The THUMOS14 entries agree with
``reference/keys/param_counts.tsv`` (29,251,612 and 15,989,604). Models are built on the meta
device: no memory, no init cost.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from tal_lab.config import load_config
from tal_lab.models import build_detector

# (repository, official YAML) -> (parameters, state-dict entries, layout digest) of the official model.
OFFICIAL_MODELS: dict[tuple[str, str], tuple[int, int, str]] = {
    ("actionformer", "anet_i3d.yaml"): (8_123_145, 229,
        "c92bf089397014691b4e845b627a10ba2c6551cc85b8155b76c2328d0fd76ab3"),
    ("actionformer", "anet_tsp.yaml"): (6_943_497, 229,
        "cf0c25fe8ac231f11d2892adcfe747802622aafb7f309de817ccfe7593d10361"),
    ("actionformer", "ego4d_egovlp.yaml"): (18_675_576, 289,
        "a8214b25f556e821c11b508c0a6bf79b76a16ded2edaea2334cf801c7151cd9e"),
    ("actionformer", "ego4d_omnivore.yaml"): (34_927_736, 289,
        "ff2cd925caa074459f41fe606d10b6050d39ecb6bda921c7ed55237564706f22"),
    ("actionformer", "ego4d_omnivore_egovlp.yaml"): (77_164_152, 289,
        "5a893772e415d4a9b001e5c34b17c8619f011c9605664c78e86ff17ef38441f3"),
    ("actionformer", "ego4d_slowfast.yaml"): (32_945_271, 259,
        "e75f64c0293142a73afabc01f021c81c79b510c6667cc1467b46d1686aa8e739"),
    ("actionformer", "ego4d_slowfast_egovlp.yaml"): (78_933_624, 289,
        "e79ef30c9939eb4b9e3fb27f6f937c666187a9aa20288b31da57a3e4eebb9ad1"),
    ("actionformer", "ego4d_slowfast_omnivore_egovlp.yaml"): (134_048_888, 295,
        "b53aebe40b250003e35f0da8461651174026076dca1dd9fc21fdb17f2eb14cc8"),
    ("actionformer", "epic_slowfast_noun.yaml"): (30_075_188, 229,
        "edff61d03834def71313734c4bd43ef0a35b440abce2eabae9b5d7e9daafb48a"),
    ("actionformer", "epic_slowfast_verb.yaml"): (29_763_177, 229,
        "4f05510127273354356f2bf1e00ca917f5c5345925e251fa1eb137330d3e6b57"),
    ("actionformer", "thumos_i3d.yaml"): (29_251_612, 229,
        "bdf16cd473c6bf1e424bf387bc3c74965711843f988a36eba8e72c04d35c67b4"),
    ("tridet", "anet_tsp.yaml"): (12_811_555, 192,
        "fef730964cd9e898837d9c04762b38e89d13313169ee15bfa307af5f7617406b"),
    ("tridet", "epic_slowfast_noun.yaml"): (19_503_532, 192,
        "8e00ba70d967cca33d8c5008e8b68ab367169a60f5b884401de2ae1e2691346f"),
    ("tridet", "epic_slowfast_verb.yaml"): (18_594_123, 192,
        "63ddaf76553c0d271ae2969aff89765e1f7bab8ee4cff36f5ce2939637662251"),
    ("tridet", "hacs_i3d.yaml"): (53_412_473, 215,
        "e9a32e98bd8e0030c22a7acef68dcd1bb45b7c3254b04a309f6524e365a20667"),
    ("tridet", "hacs_slowfast.yaml"): (51_860_092, 192,
        "bcc3abf2a5f012780446a6941757ad8a57f513900e56f6ed3d6c8d37c75754c7"),
    ("tridet", "thumos_i3d.yaml"): (15_989_604, 192,
        "c83c0d57b7305dbde32eab9dbf3a109cfe9cb04a82297839abcf40176f0eb33a"),
}


def _layout_digest(state: dict[str, torch.Tensor]) -> str:
    lines = "".join(f"{key}\t{list(value.shape)}\n" for key, value in state.items())
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.mark.needs_shared
@pytest.mark.parametrize(("repo", "name"), list(OFFICIAL_MODELS))
def test_official_yaml_builds_the_official_model(shared_dir: Path, repo: str, name: str) -> None:
    params, entries, layout = OFFICIAL_MODELS[(repo, name)]
    cfg = load_config(shared_dir / "reference/configs" / repo / name)
    with torch.device("meta"):
        model = build_detector(cfg)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(state) == entries
    assert _layout_digest(state) == layout
    if repo == "tridet":
        assert {key.split(".")[0] for key in state} == {"backbone", "neck", "cls_head", "start_head", "end_head",
                                                       "reg_head"}


@pytest.mark.needs_shared
def test_every_official_yaml_has_its_numbers(shared_dir: Path) -> None:
    on_disk = {(p.parent.name, p.name) for p in (shared_dir / "reference/configs").glob("*/*.yaml")}
    assert on_disk == set(OFFICIAL_MODELS)
