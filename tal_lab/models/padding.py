"""How the detector pads its inputs: the one padding policy, for training and inference.

The detector pads every batch before the backbone (:meth:`tal_lab.models.Detector.forward`);
the data pipeline's :func:`tal_lab.data.batching.pad_videos` and the feature probe
(:func:`tal_lab.analysis.features.extract_features`) pad as it does by asking the same
:class:`PaddingPolicy`, built from the detector (``detector.padding``) or from the config
(:meth:`PaddingPolicy.from_config`; the two are equal, a test holds them together).

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

from tal_lab.config import level_strides, max_div_factor
from tal_lab.core.structures import padded_length

__all__ = ["PADDING_MODES", "PaddingPolicy"]

# model.eval_padding / model.train_padding.
PADDING_MODES: tuple[str, ...] = ("reference", "minimal")


@dataclass(frozen=True)
class PaddingPolicy:
    """The padded lengths of the detector's batches.

    Attributes:
        max_seq_len: training length; inference videos up to it are padded as short ones.
        max_div_factor: the reference's divisor for over-length inference videos.
        top_stride: stride of the pyramid's last level (``minimal`` keeps one padded step there).
        eval_padding: 'reference' or 'minimal' (model.eval_padding).
        train_padding: 'reference' or 'minimal' (model.train_padding).
    """

    max_seq_len: int
    max_div_factor: int
    top_stride: int
    eval_padding: str = "reference"
    train_padding: str = "reference"

    def __post_init__(self) -> None:
        for key in ("eval_padding", "train_padding"):
            if getattr(self, key) not in PADDING_MODES:
                raise ValueError(f"model.{key} must be one of {PADDING_MODES}, got {getattr(self, key)!r}")

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> "PaddingPolicy":
        """The policy of the detector ``build_detector`` makes from a config's ``model`` section."""
        return cls(max_seq_len=int(model_cfg["max_seq_len"]), max_div_factor=max_div_factor(model_cfg),
                   top_stride=level_strides(model_cfg)[-1], eval_padding=model_cfg["eval_padding"],
                   train_padding=model_cfg["train_padding"])

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
        return self.minimal_length(lengths) if self.train_padding == "minimal" else reference

    def eval_groups(self, lengths: Sequence[int]) -> list[tuple[int, list[int]]]:
        """How inference batches videos: (padded length, video indices) groups.

        The 'minimal' group of short videos comes first, then the reference's lengths in
        first-seen order; indices keep their input order within a group.
        """
        groups: dict[int, list[int]] = {}
        short: list[int] = []
        for i, n in enumerate(lengths):
            if self.eval_padding == "minimal" and n <= self.max_seq_len:
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
