"""The registries of model components: the one list of backbone, neck and head names.

Every name a config may give in ``model.backbone_type``, ``model.fpn_type`` or
``model.head_type`` is in one of the three registries below; config validation
(:mod:`tal_lab.config`) and the notebooks' choices (:mod:`tal_lab.study.params`) read their
:meth:`Registry.names`. A builder is a plain function registered under its name (timm style)::

    @register_backbone("conv")
    def build_conv_backbone(model_cfg: Mapping[str, Any]) -> PyramidBackbone: ...

Builders take ``cfg['model']`` of a config from :func:`tal_lab.config.load_config` (plus, for
necks and heads, what the previous stage produces), so adding a component never touches the
detector.

The built-in names are declared here once, each with the module that registers its builder.
The config layer validates names but sits below ``tal_lab.models`` (it must not import torch
models to read a YAML file), so the names are known without importing anything, and
:meth:`Registry.get` imports a built-in's module the first time its builder is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Mapping, TypeVar

__all__ = [
    "Registry",
    "BACKBONES",
    "NECKS",
    "HEADS",
    "register_backbone",
    "register_neck",
    "register_head",
]

Builder = TypeVar("Builder", bound=Callable[..., Any])


class Registry(Generic[Builder]):
    """A name -> builder table: built-in names declared with their module, others registered.

    Args:
        kind: what the builders build ('backbone', 'neck', 'head'), for messages.
        config_key: the key under ``model`` that names one (``backbone_type``, ...).
        builtins: built-in name -> the module whose import registers its builder.
    """

    def __init__(self, kind: str, config_key: str, builtins: Mapping[str, str]) -> None:
        self.kind = kind
        self.config_key = config_key
        self._builtins = dict(builtins)
        self._builders: dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        """Decorator registering a builder under ``name``; a name can be registered only once,
        and a built-in name only by the module declared for it."""

        def decorator(builder: Builder) -> Builder:
            if name in self._builders:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            owner = self._builtins.get(name)
            if owner is not None and builder.__module__ != owner:
                raise ValueError(f"{self.kind} '{name}' is a built-in name, registered by {owner}; "
                                 f"choose another name for {builder.__module__}.{builder.__qualname__}")
            self._builders[name] = builder
            return builder

        return decorator

    def unregister(self, name: str) -> None:
        """Remove a name registered at run time (a test's or a notebook's component).

        Raises:
            ValueError: a built-in name, or a name that is not registered.
        """
        if name in self._builtins:
            raise ValueError(f"{self.kind} '{name}' is built in and cannot be unregistered")
        if name not in self._builders:
            raise ValueError(f"{self.kind} '{name}' is not registered")
        del self._builders[name]

    def get(self, name: str) -> Builder:
        """The builder registered under ``name`` (importing a built-in's module on first use).

        Raises:
            ValueError: naming the config key and the known names.
        """
        if name not in self._builders and name in self._builtins:
            # Imported here, not at the top: the builders live in tal_lab.models, above core and
            # config, which must list and validate the names without importing the models.
            importlib.import_module(self._builtins[name])
        if name in self._builtins and name not in self._builders:
            raise ValueError(f"{self._builtins[name]} did not register the built-in {self.kind} '{name}'")
        if name not in self._builders:
            raise ValueError(f"unknown {self.kind} '{name}' (config key model.{self.config_key}); "
                             f"known: {self.names()}")
        return self._builders[name]

    def names(self) -> list[str]:
        """Every known name: the built-ins in declaration order, then the registered others."""
        return list(self._builtins) + [name for name in self._builders if name not in self._builtins]

    def __contains__(self, name: object) -> bool:
        return name in self._builtins or name in self._builders


BACKBONES: Registry[Callable[..., Any]] = Registry("backbone", "backbone_type", {
    "convTransformer": "tal_lab.models.backbones.conv_transformer",
    "conv": "tal_lab.models.backbones.conv",
    "sgp": "tal_lab.models.backbones.sgp",
    "maxpool": "tal_lab.models.backbones.maxpool",
})
NECKS: Registry[Callable[..., Any]] = Registry("neck", "fpn_type", {
    "identity": "tal_lab.models.necks",
    "fpn": "tal_lab.models.necks",
})
HEADS: Registry[Callable[..., Any]] = Registry("head", "head_type", {
    "actionformer": "tal_lab.models.heads.actionformer",
    "trident": "tal_lab.models.heads.trident",
    "decoupled": "tal_lab.models.heads.decoupled",
})

register_backbone = BACKBONES.register
register_neck = NECKS.register
register_head = HEADS.register
