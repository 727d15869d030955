"""tal_lab.models: ActionFormer split into backbone / neck / head, and the detector.

Build a detector from a config (``tal_lab.config.load_config``)::

    from tal_lab.models import build_detector
    detector = build_detector(cfg)

Components are registered by name in the registries of :mod:`tal_lab.core.registry`
(``BACKBONES``, ``NECKS``, ``HEADS``, re-exported here), which also declare the built-in names:
backbones ``convTransformer``, ``conv``, ``sgp``, ``maxpool``; necks ``identity``, ``fpn``;
heads ``actionformer``, ``trident``, ``decoupled``. Importing this package registers their builders.
"""

from tal_lab.core.registry import BACKBONES, HEADS, NECKS, register_backbone, register_head, register_neck
from tal_lab.models import backbones, heads, necks  # noqa: F401  (importing registers the built-in parts)
from tal_lab.models.backbones import ConvBackbone, ConvTransformerBackbone, PyramidBackbone, SGPBackbone
from tal_lab.models.detector import Detector, build_detector
from tal_lab.models.heads import ActionFormerHead, ClsHead, DenseHead, RegHead
from tal_lab.models.necks import FPNNeck, IdentityNeck
from tal_lab.models.points import PointGenerator

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
