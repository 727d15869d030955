"""The component registries: declared built-in names, lazy import of their builders, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tal_lab.core.registry import Registry


def _builder() -> None:
    """A stand-in builder defined in this module."""


def test_builtin_names_are_known_before_their_module_is_imported() -> None:
    registry: Registry = Registry("thing", "thing_type", {"json": "json", "mine": __name__})
    assert registry.names() == ["json", "mine"] and "json" in registry and "other" not in registry
    with pytest.raises(ValueError, match="json did not register the built-in thing 'json'"):
        registry.get("json")  # json is imported, but registers nothing
    registry.register("mine")(_builder)
    assert registry.get("mine") is _builder


def test_a_builtin_name_is_registered_only_by_its_module() -> None:
    registry: Registry = Registry("thing", "thing_type", {"mine": "somewhere.else"})
    with pytest.raises(ValueError, match="'mine' is a built-in name, registered by somewhere.else"):
        registry.register("mine")(_builder)
    with pytest.raises(ValueError, match="cannot be unregistered"):
        registry.unregister("mine")


def test_run_time_names_follow_the_builtins_and_can_be_removed() -> None:
    registry: Registry = Registry("thing", "thing_type", {"mine": __name__})
    registry.register("extra")(_builder)
    assert registry.names() == ["mine", "extra"]
    registry.unregister("extra")
    assert registry.names() == ["mine"]
    with pytest.raises(ValueError, match="'extra' is not registered"):
        registry.unregister("extra")
    with pytest.raises(ValueError, match=r"unknown thing 'extra' \(config key model.thing_type\); known: \['mine'\]"):
        registry.get("extra")


def test_config_validates_names_without_importing_the_models() -> None:
    """The config layer reads the registry's names; only asking for a builder imports its module."""
    script = textwrap.dedent("""
        import sys
        from tal_lab.config import load_config
        from tal_lab.core.registry import BACKBONES
        load_config({"model": {"backbone_type": "maxpool"}})
        assert "torch" not in sys.modules and "tal_lab.models" not in sys.modules, sorted(sys.modules)
        BACKBONES.get("maxpool")
        assert "tal_lab.models.backbones.maxpool" in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
