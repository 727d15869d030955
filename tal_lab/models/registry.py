"""Registries of builder functions for backbones, necks and heads (timm style).

A builder is a plain function registered under the name the config uses
(``model.backbone_type``, ``model.fpn_type``, ``model.head_type``)::

    @register_backbone("conv")
    def build_conv_backbone(model_cfg: Mapping[str, Any]) -> PyramidBackbone: ...

Builders take ``cfg['model']`` of a config from :func:`tal_lab.config.load_config` (plus, for
necks and heads, what the previous stage produces), so adding a component never touches the
detector. The registry-walk test builds every registered combination at tiny size.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

__all__ = [
    "Registry",
    "BACKBONES",
    "NECKS",
    "HEADS",
    "register_backbone",
    "register_neck",
    "register_head",
]

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """A name -> builder-function table with a clear error for unknown names."""

    def __init__(self, kind: str, config_key: str) -> None:
        self.kind = kind
        self.config_key = config_key
        self._builders: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``fn`` under ``name``; a name can be registered only once."""

        def decorator(fn: F) -> F:
            if name in self._builders:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._builders[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> F:
        """The builder registered under ``name``.

        Raises:
            ValueError: naming the config key and the registered names.
        """
        if name not in self._builders:
            raise ValueError(
                f"unknown {self.kind} '{name}' (config key model.{self.config_key}); "
                f"registered: {sorted(self._builders)}"
            )
        return self._builders[name]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders


BACKBONES: Registry = Registry("backbone", "backbone_type")
NECKS: Registry = Registry("neck", "fpn_type")
HEADS: Registry = Registry("head", "head_type")

register_backbone = BACKBONES.register
register_neck = NECKS.register
register_head = HEADS.register
