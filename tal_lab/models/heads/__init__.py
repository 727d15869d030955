"""Detection heads (registered by name on import): actionformer, trident and decoupled."""

from tal_lab.models.heads.actionformer import ActionFormerHead, CenterSamplingHead, ClsHead, DenseHead, RegHead
from tal_lab.models.heads.decoupled import DecoupledHead
from tal_lab.models.heads.trident import TridentHead

__all__ = ["DenseHead", "CenterSamplingHead", "ClsHead", "RegHead", "ActionFormerHead", "TridentHead",
           "DecoupledHead"]
