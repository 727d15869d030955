"""Training and evaluation engine: ActionFormer's recipe, resumable, recorded in a run store.

* :func:`train` (cfg, output_root, run_name, resume, progress) -> run folder
* :func:`evaluate` (cfg, checkpoint, weights, output) -> :class:`EvalResult`
* :func:`detect` (cfg, checkpoint, features_path, fps, feat_stride, num_frames) -> DataFrame

Modules: ``optim`` (parameter groups, warm-up + cosine per iteration), ``ema``,
``checkpointing`` (atomic, resumable), ``trainer`` (the epoch loop), ``evaluator`` (inference,
mAP, score fusion), ``distributed`` (torchrun / DDP), ``components`` (detector and data
builders), ``api`` (the entry points). The run store's layout is in ``tal_lab.runs``.
"""

from tal_lab.engine.api import detect, evaluate, load_weights, train
from tal_lab.engine.evaluator import EvalResult
from tal_lab.engine.trainer import NonFiniteLossError, Trainer

__all__ = ["train", "evaluate", "detect", "load_weights", "EvalResult", "NonFiniteLossError", "Trainer"]
