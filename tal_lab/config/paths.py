"""Data paths of a config file: relative to the working directory, or to the file's folder.

ActionFormer reads ``dataset.json_file`` and ``dataset.feat_folder`` relative to the working
directory (its configs say ``./data/thumos/...`` and are run from the repository root), and so
does tal_lab by default (``dataset.paths_relative_to: cwd``). A config that says
``paths_relative_to: config`` (the synthetic generator writes one) has its relative data paths
read from the folder of its YAML file instead, so the folder can be copied or moved whole.

The rule applies to the paths written in the YAML file itself, when the config is loaded from
a file; a config given as a mapping has no folder, so its paths stay as they are. Loading
makes them absolute, so a loaded (and re-written) config means the same wherever it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

__all__ = ["DATA_PATH_KEYS", "resolve_data_paths"]

# The dataset keys that name files or folders (feat_folder: one folder or a list, Ego4D).
DATA_PATH_KEYS = ("json_file", "feat_folder")


def _under(folder: Path, value: Any) -> Any:
    if isinstance(value, list):
        return [_under(folder, v) for v in value]
    if not isinstance(value, str) or Path(value).is_absolute():
        return value
    return str((folder / value).resolve())


def resolve_data_paths(raw: dict[str, Any], config_file: Path) -> dict[str, Any]:
    """``raw`` (a YAML file's content, as read) with relative data paths made absolute when it
    says ``dataset.paths_relative_to: config``; returned unchanged otherwise."""
    dataset = raw.get("dataset")
    if not isinstance(dataset, Mapping) or dataset.get("paths_relative_to") != "config":
        return raw
    folder = config_file.resolve().parent
    resolved = {k: (_under(folder, v) if k in DATA_PATH_KEYS else v) for k, v in dataset.items()}
    return {**raw, "dataset": resolved}
