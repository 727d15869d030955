"""Backbones (registered by name on import): convTransformer, conv, sgp and maxpool.

Each shares :class:`~tal_lab.models.backbones.pyramid.PyramidBackbone`'s layout: a conv embedding,
a stem at full resolution and a strided branch whose outputs form the feature pyramid.
"""

from tal_lab.models.backbones.conv import ConvBackbone
from tal_lab.models.backbones.conv_transformer import ConvTransformerBackbone
from tal_lab.models.backbones.maxpool import MaxPoolBackbone
from tal_lab.models.backbones.pyramid import PyramidBackbone
from tal_lab.models.backbones.sgp import SGPBackbone

__all__ = ["PyramidBackbone", "ConvTransformerBackbone", "ConvBackbone", "SGPBackbone", "MaxPoolBackbone"]
