"""tal_lab.models: ActionFormer split into backbone / neck / head, and the detector.

Build a detector from a config (``tal_lab.config.load_config``)::

    from tal_lab.models import build_detector
    detector = build_detector(cfg)

Components are registered by name (``BACKBONES``, ``NECKS``, ``HEADS``); importing this package
registers the built-in ones: backbones ``convTransformer``, ``conv``, ``sgp``, ``maxpool``;
necks ``identity``, ``fpn``; heads ``actionformer``, ``trident``, ``decoupled``.
"""

from . import backbones, necks, heads  # noqa: F401  (importing registers the built-in parts)
from . import maxpool, trident, decoupled  # noqa: F401
from .backbones import ConvBackbone, ConvTransformerBackbone, PyramidBackbone, SGPBackbone
from .detector import Detector, build_detector
from .heads import ActionFormerHead, ClsHead, DenseHead, RegHead
from .necks import FPNNeck, IdentityNeck
from .points import PointGenerator
from .registry import BACKBONES, HEADS, NECKS, register_backbone, register_head, register_neck

__all__ = [
    "build_detector",
    "Detector",
    "PyramidBackbone",
    "ConvTransformerBackbone",
    "ConvBackbone",
    "SGPBackbone",
    "IdentityNeck",
    "FPNNeck",
    "DenseHead",
    "ActionFormerHead",
    "ClsHead",
    "RegHead",
    "PointGenerator",
    "BACKBONES",
    "NECKS",
    "HEADS",
    "register_backbone",
    "register_neck",
    "register_head",
]
