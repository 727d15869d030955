"""Every official YAML of ActionFormer (61ea7eb) and TriDet (764b816) loads unchanged, in its own
dialect, and every key means there what it means in its repository (official_merged_configs.json:
each YAML merged by its own repository's loader)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tal_lab.config import load_config, reference_dict

OFFICIAL = {
    "actionformer": ["anet_i3d.yaml", "anet_tsp.yaml", "ego4d_egovlp.yaml", "ego4d_omnivore.yaml",
                     "ego4d_omnivore_egovlp.yaml", "ego4d_slowfast.yaml", "ego4d_slowfast_egovlp.yaml",
                     "ego4d_slowfast_omnivore_egovlp.yaml", "epic_slowfast_noun.yaml", "epic_slowfast_verb.yaml",
                     "thumos_i3d.yaml"],
    "tridet": ["anet_tsp.yaml", "epic_slowfast_noun.yaml", "epic_slowfast_verb.yaml", "hacs_i3d.yaml",
               "hacs_slowfast.yaml", "thumos_i3d.yaml"],
}
CASES = [(repo, name) for repo, names in OFFICIAL.items() for name in names]

# The deliberate differences between a resolved config and its repository's merge: dotted key ->
# (the value tal_lab holds, why). Every other key both define must be equal.
ALLOWED_DIFFERENCES: dict[str, dict[str, tuple[Any, str]]] = {
    "actionformer": {},
    "tridet": {
        "model.backbone_type": ("sgp", "TriDet spells the SGP backbone 'SGP'; tal_lab reads it as its registered "
                                       "name 'sgp' (one registry of names, tal_lab.core.registry)"),
        "model.use_trident_head": (None, "TriDet's flag is tal_lab's model.head_type ('trident' for true, "
                                         "'actionformer' for false), so it is no key of the resolved config"),
    },
}
# The model keys derived from other sections, compared through those sections.
DERIVED = {"model.input_dim", "model.num_classes", "model.max_seq_len", "model.train_cfg", "model.test_cfg"}


def _dotted(cfg: dict[str, Any]) -> dict[str, Any]:
    return {f"{name}.{key}" if isinstance(section, dict) else name: value
            for name, section in cfg.items()
            for key, value in (section.items() if isinstance(section, dict) else [(name, section)])}


@pytest.fixture(scope="module")
def merged(shared_dir: Path) -> dict[str, Any]:
    return json.loads((shared_dir / "reference/configs/official_merged_configs.json").read_text())


@pytest.mark.needs_shared
def test_the_list_is_every_official_yaml(shared_dir: Path) -> None:
    on_disk = {(p.parent.name, p.name) for p in (shared_dir / "reference/configs").glob("*/*.yaml")}
    assert on_disk == set(CASES)


@pytest.mark.needs_shared
@pytest.mark.parametrize(("repo", "name"), CASES)
def test_official_yaml_resolves_to_its_repositorys_merge(shared_dir: Path, merged: dict[str, Any], repo: str,
                                                         name: str) -> None:
    cfg = load_config(shared_dir / "reference/configs" / repo / name)
    assert cfg["recipe"] == repo
    written = _dotted(reference_dict(cfg))  # the references' sentinels spelled back
    expected = _dotted(merged[repo][name])
    allowed = ALLOWED_DIFFERENCES[repo]
    compared = 0
    for key, value in expected.items():
        if key in DERIVED:
            continue
        if key in allowed:
            assert written.get(key) == allowed[key][0], key
            continue
        assert key in written, f"{key} of {repo}/{name} is not in the resolved config"
        assert written[key] == value and type(written[key]) is type(value), f"{key}: {written[key]!r} != {value!r}"
        compared += 1
    assert compared >= 70  # every key of a merged config but the derived ones and the allowed ones
    model = cfg["model"]
    assert (model["input_dim"], model["num_classes"], model["max_seq_len"]) == (
        expected["model.input_dim"], expected["model.num_classes"], expected["model.max_seq_len"])
    if repo == "tridet":
        assert model["head_type"] == "trident"  # TriDet's default use_trident_head (true in two YAMLs)


@pytest.mark.needs_shared
def test_allowed_differences_are_real(shared_dir: Path, merged: dict[str, Any]) -> None:
    """Each allowed difference occurs: the list holds no stale entry."""
    for repo, allowed in ALLOWED_DIFFERENCES.items():
        for key in allowed:
            assert all(key in _dotted(merged[repo][name]) for name in OFFICIAL[repo]), (repo, key)
