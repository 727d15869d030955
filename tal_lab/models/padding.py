"""How the detector pads its inputs: the one padding policy, for training and inference.

The detector pads every batch before the backbone (:meth:`tal_lab.models.Detector.forward`);
the data pipeline's :func:`tal_lab.data.batching.pad_videos` and the feature probe
(:func:`tal_lab.analysis.features.extract_features`) pad as it does by asking the same
:class:`PaddingPolicy`, built from the detector (``detector.padding``) or from the config
(:meth:`PaddingPolicy.from_config`; the two are equal, a test holds them together).

* ``auto`` (the default of both keys): ``minimal`` for a backbone whose valid outputs do not
  depend on the amount of padding (``backbone.padding_invariant``: convTransformer, conv,
  maxpool without absolute position encoding), else ``reference`` (SGP). It computes what
  ``reference`` computes, on fewer padded steps.
* Training, ``train_padding: reference``: every batch is padded to ``max_seq_len`` (videos
  were truncated to it). ``minimal``: to :meth:`PaddingPolicy.minimal_length`.
* Inference, ``eval_padding: reference``: each video gets ActionFormer's length
  (``max_seq_len``, or the next multiple of ``max_div_factor`` when longer) and videos of equal
  length share a batch. ``minimal``: videos up to ``max_seq_len`` share one batch padded to
  their :meth:`PaddingPolicy.minimal_length`; longer ones keep the reference's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from tal_lab.config import PADDING_MODES, level_strides, max_div_factor
from tal_lab.core.registry import BACKBONES
from tal_lab.core.structures import padded_length

__all__ = ["PADDING_MODES", "PaddingPolicy", "backbone_padding_invariant", "resolve_padding_mode"]


def resolve_padding_mode(mode: str, padding_invariant: bool) -> str:
    """The mode a padding setting means for a backbone: 'auto' is 'minimal' where that is exact
    (``padding_invariant``), else 'reference'; the others mean themselves."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}")
    if mode == "auto":
        return "minimal" if padding_invariant else "reference"
    return mode


def backbone_padding_invariant(model_cfg: Mapping[str, Any]) -> bool:
    """``padding_invariant`` of the backbone ``model_cfg`` builds, asked of the backbone itself.

    The backbone is built on the meta device (no memory, no computation), so the answer comes
    from its one owner, the backbone class, also for a backbone registered by a user.
    """
    with torch.device("meta"):
        backbone = BACKBONES.get(model_cfg["backbone_type"])(model_cfg)
    return bool(getattr(backbone, "padding_invariant", False))


@dataclass(frozen=True)
class PaddingPolicy:
    """The padded lengths of the detector's batches.

    Attributes:
        max_seq_len: training length; inference videos up to it are padded as short ones.
        max_div_factor: the reference's divisor for over-length inference videos.
        top_stride: stride of the pyramid's last level (``minimal`` keeps one padded step there).
        eval_padding: 'auto', 'reference' or 'minimal' (model.eval_padding), as configured.
        train_padding: 'auto', 'reference' or 'minimal' (model.train_padding), as configured.
        padding_invariant: the backbone's ``padding_invariant`` (what 'auto' resolves by).
    """

    max_seq_len: int
    max_div_factor: int
    top_stride: int
    eval_padding: str = "reference"
    train_padding: str = "reference"
    padding_invariant: bool = False

    def __post_init__(self) -> None:
        for key in ("eval_padding", "train_padding"):
            if getattr(self, key) not in PADDING_MODES:
                raise ValueError(f"model.{key} must be one of {PADDING_MODES}, got {getattr(self, key)!r}")

    @property
    def eval_mode(self) -> str:
        """'reference' or 'minimal': what ``eval_padding`` means for this backbone."""
        return resolve_padding_mode(self.eval_padding, self.padding_invariant)

    @property
    def train_mode(self) -> str:
        """'reference' or 'minimal': what ``train_padding`` means for this backbone."""
        return resolve_padding_mode(self.train_padding, self.padding_invariant)

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> "PaddingPolicy":
        """The policy of the detector ``build_detector`` makes from a config's ``model`` section."""
        return cls(max_seq_len=int(model_cfg["max_seq_len"]), max_div_factor=max_div_factor(model_cfg),
                   top_stride=level_strides(model_cfg)[-1], eval_padding=model_cfg["eval_padding"],
                   train_padding=model_cfg["train_padding"], padding_invariant=backbone_padding_invariant(model_cfg))

    def minimal_length(self, lengths: Sequence[int]) -> int:
        """Shortest padded length (<= max_seq_len) keeping >= 1 padded step at every level.

        Each video needs its length rounded up to the top stride plus one top-stride step (the
        padded steps hold what the reference's padding holds: LayerNorm biases, zeros), capped
        at max_seq_len, where it equals the reference's padding.
        """
        top = self.top_stride
        return max(min(self.max_seq_len, -(-int(n) // top) * top + top) for n in lengths)

    def train_length(self, lengths: Sequence[int]) -> int:
        """The padded length of a training batch of videos of these lengths.

        Raises:
            ValueError: a video longer than max_seq_len (training videos are truncated to it).
        """
        reference = padded_length(lengths, self.max_seq_len, self.max_div_factor, training=True)
        return self.minimal_length(lengths) if self.train_mode == "minimal" else reference

    def eval_groups(self, lengths: Sequence[int]) -> list[tuple[int, list[int]]]:
        """How inference batches videos: (padded length, video indices) groups.

        The 'minimal' group of short videos comes first, then the reference's lengths in
        first-seen order; indices keep their input order within a group.
        """
        groups: dict[int, list[int]] = {}
        short: list[int] = []
        for i, n in enumerate(lengths):
            if self.eval_mode == "minimal" and n <= self.max_seq_len:
                short.append(i)
            else:
                length = padded_length([n], self.max_seq_len, self.max_div_factor, training=False)
                groups.setdefault(length, []).append(i)
        head = [(self.minimal_length([lengths[i] for i in short]), short)] if short else []
        return head + list(groups.items())

    def batch_length(self, lengths: Sequence[int], training: bool) -> int:
        """The one length the detector pads a batch of these videos to.

        Raises:
            ValueError: in training, a video longer than max_seq_len; at inference, videos the
                detector pads in several batches (see :meth:`eval_groups`), naming their lengths.
        """
        if len(lengths) == 0:
            raise ValueError("cannot pad an empty batch")
        if training:
            return self.train_length(lengths)
        groups = self.eval_groups(lengths)
        if len(groups) > 1:
            raise ValueError(
                f"the detector pads videos of lengths {list(lengths)} in {len(groups)} inference batches (padded "
                f"lengths {[length for length, _ in groups]}); pad each group of PaddingPolicy.eval_groups apart")
        return groups[0][0]
