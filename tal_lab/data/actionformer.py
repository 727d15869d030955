"""ActionFormer-format datasets: THUMOS14, ActivityNet-1.3, EPIC-Kitchens-100 (and synthetic).

Ego4D and HACS are variants of these classes in :mod:`tal_lab.data.ego4d` and
:mod:`tal_lab.data.hacs`; :mod:`tal_lab.data.build` holds the table of all datasets.

Each item is the video dict ActionFormer's detector consumes::

    {'video_id': str, 'feats': float32 (C, T), 'segments': float32 (N, 2) grid units or None,
     'labels': int64 (N,) or None, 'fps': float, 'duration': float (seconds),
     'feat_stride': float, 'feat_num_frames': float}

with the same conversions as ActionFormer's datasets: ``downsample_rate`` keeps every k-th
feature and multiplies the stride; seconds become grid steps with
:func:`tal_lab.core.structures.sec_to_grid` (the half-window offset); in training, videos are
truncated to ``max_seq_len`` (:func:`~tal_lab.data.transforms.truncate_video`). Loading is
lazy: the dataset holds the parsed annotations, and each ``__getitem__`` reads one feature file.

Where a video's feature files are is the dataset's :class:`~tal_lab.data.layout.FeatureLayout`
(``feature_layout``), which ``validate`` uses too. Unlike the reference, problems are errors
that name the file and the video: a video of the split without its feature file fails at
construction (the reference silently skips it), and a feature file with the wrong dimension,
NaN / inf values or no steps fails when it is read.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tal_lab.data.annotations import VideoRecord, load_database, parse_annotations
from tal_lab.data.errors import DataError, DataFileNotFoundError, Problem, format_problems, raise_errors
from tal_lab.data.features import channels_first
from tal_lab.data.layout import FeatureLayout
from tal_lab.data.lengths import expected_steps
from tal_lab.data.transforms import drop_segments_past_features, resize_features, truncate_video
from tal_lab.core.structures import sec_to_grid

__all__ = [
    "ActionFormerDataset",
    "ThumosDataset",
    "SyntheticDataset",
    "EpicKitchensDataset",
    "ActivityNetDataset",
]

VideoDict = dict[str, Any]


class ActionFormerDataset(Dataset):
    """Base class: one annotation JSON, one feature file per video (THUMOS14 behaviour).

    Args:
        dataset_cfg: the config's ``dataset`` section (json_file, feat_folder, file_prefix,
            file_ext, num_classes, input_dim, feat_stride, num_frames, default_fps,
            downsample_rate, max_seq_len, trunc_thresh, crop_ratio, force_upsampling).
        split: subsets to load, e.g. ``['validation']`` (matched case-insensitively).
        is_training: truncate / crop videos (training) or return them whole.
        seed: seed of the truncation random generator (reseeded per DataLoader worker).
        strict: treat warnings (segments outside the video, zero-length segments) as errors.

    Raises:
        DataFileNotFoundError: the JSON, the feature folder or a video's feature file is missing.
        DataError: the JSON has problems (listed, each naming the video), or the split is empty.
    """

    dataset_name = "thumos-14"
    tiou_thresholds: tuple[float, ...] = tuple(np.linspace(0.3, 0.7, 5).tolist())
    # How the annotations are read (tal_lab.data.annotations.parse_annotations): the label map
    # must hold exactly num_classes labels; repeated annotations are dropped (and, unless
    # dataset.gt_filter says 'duplicates', near-empty ones with them; default_gt_filter when a
    # plain dataset dict lacks the key); num_classes 1 makes every label 0 (class-agnostic proposals).
    exact_label_map = True
    drop_duplicates = False
    default_gt_filter = "duplicates_and_short"
    # The recipe option dataset.trunc_window when a plain dataset dict lacks it (ActionFormer's).
    default_trunc_window = "widened"
    proposals_when_single_class = False

    def __init__(
        self,
        dataset_cfg: Mapping[str, Any],
        split: Sequence[str],
        is_training: bool,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        self.cfg = dict(dataset_cfg)
        if isinstance(split, str):
            split = [split]
        self.split = [s.lower() for s in split]
        self.is_training = is_training
        self.json_file = str(self.cfg["json_file"])
        self.layout = self.feature_layout(self.cfg, list(split))
        self.num_classes = int(self.cfg["num_classes"])
        self.input_dim = self.layout.input_dim
        self.rng = random.Random(seed)

        missing = self.layout.missing_folders()
        if missing:
            raise DataFileNotFoundError(f"{', '.join(map(str, missing))}: feature folder does not exist "
                                        "(dataset.feat_folder)")
        parsed = parse_annotations(load_database(self.json_file), self.json_file, self.split, self.num_classes,
                                   self.cfg.get("default_fps"), **self.annotation_rules(self.cfg))
        problems = parsed.problems + self._missing_files(parsed.videos)
        if strict:
            problems = [Problem("error", p.code, p.file, p.video_id, p.message) for p in problems]
        raise_errors(problems, f"dataset {self.json_file} (split {self.split})")
        if not parsed.videos:
            raise DataError(f"{self.json_file}: split {self.split} selects no videos "
                            f"(subsets present: {parsed.subsets_present}; see train_split / val_split)")
        warned = [p for p in problems if p.severity == "warning"]
        if warned:
            warnings.warn(f"dataset {self.json_file}: {len(warned)} warning(s)\n{format_problems(warned)}",
                          stacklevel=2)
        self.videos: list[VideoRecord] = parsed.videos
        self.label_map: dict[str, int] = parsed.label_map
        present = set(parsed.label_map.values())
        self.empty_label_ids = [c for c in range(self.num_classes) if c not in present]

    # --- hooks for the dataset variants --------------------------------------------------------
    @classmethod
    def feature_layout(cls, dataset_cfg: Mapping[str, Any], split: Sequence[str]) -> FeatureLayout:
        """Where the features of ``split`` are: ``{feat_folder}/{file_prefix}{video_id}{file_ext}``."""
        return FeatureLayout((Path(str(dataset_cfg["feat_folder"])),), dataset_cfg.get("file_prefix") or "",
                             str(dataset_cfg["file_ext"]), (int(dataset_cfg["input_dim"]),),
                             int(dataset_cfg["input_dim"]))

    @classmethod
    def annotation_rules(cls, dataset_cfg: Mapping[str, Any]) -> dict[str, bool]:
        """The keyword arguments of :func:`~tal_lab.data.annotations.parse_annotations` for this
        dataset and config (``num_classes``, the recipe option ``gt_filter``)."""
        gt_filter = dataset_cfg.get("gt_filter") or cls.default_gt_filter
        return {"exact_label_map": cls.exact_label_map, "drop_duplicates": cls.drop_duplicates,
                "drop_short": gt_filter == "duplicates_and_short",
                "single_class": cls.proposals_when_single_class and int(dataset_cfg["num_classes"]) == 1}

    def _load_array(self, video: VideoRecord) -> np.ndarray:
        feats, problems = self.layout.read(video.video_id)
        raise_errors(problems, f"dataset {self.json_file}")
        assert feats is not None
        return feats

    def _grid(self, video: VideoRecord, feats: np.ndarray) -> tuple[torch.Tensor, float, float]:
        """Features (C, T) after downsampling, with the resulting feat_stride and num_frames."""
        rate = int(self.cfg["downsample_rate"])
        return channels_first(feats[::rate, :]), self.cfg["feat_stride"] * rate, self.cfg["num_frames"]

    def _training_segments(
        self, segments: torch.Tensor, labels: torch.Tensor, feat_len: int, offset_grid: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return segments, labels

    # --- public API ----------------------------------------------------------------------------
    @property
    def attributes(self) -> dict[str, Any]:
        """ActionFormer's ``db_attributes``: name, evaluation tIoU thresholds, empty label ids."""
        return {"dataset_name": self.dataset_name, "tiou_thresholds": list(self.tiou_thresholds),
                "empty_label_ids": list(self.empty_label_ids)}

    def feature_files(self, video_id: str) -> list[Path]:
        """Paths of a video's feature files (one, except for Ego4D's several feature folders)."""
        return self.layout.files(video_id)

    def item_lengths(self) -> list[float]:
        """Each video's feature steps as a training item, estimated from its duration and capped
        at max_seq_len (what length bucketing sorts by; no feature file is read)."""
        stride, window = float(self.cfg["feat_stride"]), float(self.cfg["num_frames"])
        rate, cap = int(self.cfg["downsample_rate"]), float(self.cfg["max_seq_len"])
        return [min(cap, expected_steps(v.duration_sec, v.fps, stride, window)[0] / rate) for v in self.videos]

    def reseed(self, seed: int) -> None:
        """Reseed the truncation generator (called in each DataLoader worker)."""
        self.rng.seed(seed)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> VideoDict:
        video = self.videos[index]
        feats, feat_stride, num_frames = self._grid(video, self._load_array(video))
        offset_grid = 0.5 * num_frames / feat_stride
        if video.segments_sec is not None:
            segments = sec_to_grid(torch.from_numpy(video.segments_sec), video.fps, feat_stride, num_frames)
            labels = torch.from_numpy(video.labels.copy())  # type: ignore[union-attr]
            if self.is_training:
                segments, labels = self._training_segments(segments, labels, feats.shape[1], offset_grid)
        else:
            segments, labels = None, None
        item: VideoDict = {
            "video_id": video.video_id,
            "feats": feats,
            "segments": segments,
            "labels": labels,
            "fps": video.fps,
            "duration": video.duration_sec,
            "feat_stride": feat_stride,
            "feat_num_frames": num_frames,
        }
        if self.is_training and segments is not None:
            item = truncate_video(item, int(self.cfg["max_seq_len"]), float(self.cfg["trunc_thresh"]),
                                  offset_grid, self.cfg.get("crop_ratio"), self.rng,
                                  trunc_window=self.cfg.get("trunc_window") or self.default_trunc_window)
        return item

    def _missing_files(self, videos: list[VideoRecord]) -> list[Problem]:
        return [Problem("error", "missing_file", str(path), v.video_id, "feature file does not exist")
                for v in videos for path in self.layout.files(v.video_id) if not path.is_file()]


class ThumosDataset(ActionFormerDataset):
    """THUMOS14 (I3D .npy features, stride 4, 16-frame windows); also the synthetic benchmark."""


class SyntheticDataset(ThumosDataset):
    """The synthetic THUMOS14-shaped benchmark; a small preset may leave some classes unused."""

    dataset_name = "synthetic-thumos-14"
    exact_label_map = False


class EpicKitchensDataset(ActionFormerDataset):
    """EPIC-Kitchens-100 (SlowFast .npz features under key 'feats'); verb or noun JSON.

    The label map may hold fewer labels than num_classes (nouns without annotations); those ids
    are listed in ``empty_label_ids``.
    """

    dataset_name = "epic-kitchens-100"
    tiou_thresholds = tuple(np.linspace(0.1, 0.5, 5).tolist())
    exact_label_map = False


class ActivityNetDataset(ActionFormerDataset):
    """ActivityNet-1.3 (TSP .npy features, stride 16).

    Duplicate and near-empty annotations are dropped; num_classes 1 turns every label into 0
    (proposals). With ``force_upsampling`` the features are linearly resized to
    ``max_seq_len`` and, as in ActionFormer, the stride becomes
    ((T - 1) * feat_stride + num_frames) / max_seq_len frames, with num_frames equal to it
    (each resized step is centred on its own span). In training, actions mostly past the
    features are dropped.
    """

    dataset_name = "ActivityNet 1.3"
    tiou_thresholds = tuple(np.linspace(0.5, 0.95, 10).tolist())
    drop_duplicates = True
    proposals_when_single_class = True

    def _grid(self, video: VideoRecord, feats: np.ndarray) -> tuple[torch.Tensor, float, float]:
        if not self.cfg["force_upsampling"]:
            return super()._grid(video, feats)
        max_seq_len = int(self.cfg["max_seq_len"])
        feat_stride = float((feats.shape[0] - 1) * self.cfg["feat_stride"] + self.cfg["num_frames"]) / max_seq_len
        return resize_features(channels_first(feats), max_seq_len), feat_stride, feat_stride

    def _training_segments(
        self, segments: torch.Tensor, labels: torch.Tensor, feat_len: int, offset_grid: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return drop_segments_past_features(segments, labels, feat_len, offset_grid,
                                           float(self.cfg["trunc_thresh"]))
