"""Backbones (registered by name on import): convTransformer, conv, sgp and maxpool."""

from tal_lab.models.backbones.maxpool import MaxPoolBackbone
from tal_lab.models.backbones.pyramid import ConvBackbone, ConvTransformerBackbone, PyramidBackbone, SGPBackbone

__all__ = ["PyramidBackbone", "ConvTransformerBackbone", "ConvBackbone", "SGPBackbone", "MaxPoolBackbone"]
