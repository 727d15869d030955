"""Where a dataset keeps a video's features, and reading them as one (T, C) array.

A :class:`FeatureLayout` is the on-disk convention of one dataset split, made by the dataset
class (``feature_layout``) from its config so that loading and ``validate`` look in the same
places:

* ActionFormer (THUMOS14, ActivityNet, EPIC): one folder, ``{file_prefix}{video_id}{file_ext}``.
* Ego4D (ActionFormer's ``ego4d.py``): ``feat_folder`` may list several folders, one per
  feature type, each with a file per video; their arrays are concatenated along channels in
  the listed order. ``input_dim`` is the total, or a list with each folder's channels.
* HACS (TriDet's ``hacs.py``): the split's own sub-folder, and a reader per feature type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tal_lab.data.errors import Problem
from tal_lab.data.features import Reader, check_features, feature_path, read_features

__all__ = ["FeatureLayout"]


@dataclass(frozen=True)
class FeatureLayout:
    """The feature files of a video and how to read them.

    Attributes:
        folders: one folder per feature type; a video's files are concatenated in this order.
        dims: the channels expected of each folder's files (None: only the total is known).
        input_dim: the channels after concatenation (``dataset.input_dim``, or its sum).
        reader: how each file is read (:data:`tal_lab.data.features.READERS`).
    """

    folders: tuple[Path, ...]
    file_prefix: str
    file_ext: str
    dims: tuple[int | None, ...]
    input_dim: int
    reader: Reader = "array"

    def files(self, video_id: str) -> list[Path]:
        """The video's feature files, one per folder."""
        return [feature_path(folder, self.file_prefix, video_id, self.file_ext) for folder in self.folders]

    def missing_folders(self) -> list[Path]:
        """The feature folders that do not exist."""
        return [folder for folder in self.folders if not folder.is_dir()]

    def read(self, video_id: str) -> tuple[np.ndarray | None, list[Problem]]:
        """The video's (T, C) float32 features (files concatenated along C), or None, and the problems.

        Shapes:
            returns (T, input_dim).
        """
        arrays: list[np.ndarray] = []
        problems: list[Problem] = []
        for path, dim in zip(self.files(video_id), self.dims):
            feats, found = read_features(path, video_id, dim, self.reader)
            problems += found
            if feats is not None:
                arrays.append(feats)
        if not problems:
            problems = self._joined_problems(video_id, [(a.shape[0], a.shape[1]) for a in arrays])
        if problems:
            return None, problems
        return (arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)), []

    def check(self, video_id: str, check_values: bool) -> tuple[int | None, list[Problem]]:
        """Check the video's files as ``validate`` does; returns the length T (None if unusable)."""
        shapes: list[tuple[int, int]] = []
        problems: list[Problem] = []
        for path, dim in zip(self.files(video_id), self.dims):
            shape, found = check_features(path, video_id, dim, check_values, self.reader)
            problems += found
            if shape is not None:
                shapes.append(shape)
        if len(shapes) < len(self.folders):
            return None, problems
        return shapes[0][0], problems + self._joined_problems(video_id, shapes)

    def _joined_problems(self, video_id: str, shapes: list[tuple[int, int]]) -> list[Problem]:
        """Files of one video must have the same length and, together, input_dim channels."""
        files = self.files(video_id)
        if len({s[0] for s in shapes}) > 1:
            listed = ", ".join(f"{p} ({s[0]} steps)" for p, s in zip(files, shapes))
            return [Problem("error", "length_mismatch", str(files[0]), video_id,
                            f"the feature files concatenated along channels have different lengths: {listed}")]
        channels = [s[1] for s in shapes]
        # With every folder's channels known, each file was checked against its own.
        if None not in self.dims or sum(channels) == self.input_dim:
            return []
        listed = " + ".join(str(c) for c in channels)
        return [Problem("error", "dim", str(files[0]), video_id,
                        f"the feature files hold {listed} = {sum(channels)} channels together but "
                        f"dataset.input_dim is {self.input_dim} (files: {', '.join(map(str, files))})")]
