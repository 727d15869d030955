"""Data paths relative to the working directory (ActionFormer) or to the config file (generated configs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tal_lab.config import ConfigError, load_config
from tal_lab.config.paths import resolve_data_paths


def _write(folder: Path, dataset: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"dataset_name": "ego4d", "dataset": dataset}))
    return path


def test_config_relative_paths_are_read_from_the_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "data", {"paths_relative_to": "config", "json_file": "anno/ego4d.json",
                               "feat_folder": ["slowfast", "/abs/egovlp"]})
    monkeypatch.chdir(tmp_path)
    cfg = load_config("data/config.yaml")
    folder = (tmp_path / "data").resolve()
    assert cfg["dataset"]["json_file"] == str(folder / "anno" / "ego4d.json")
    assert list(cfg["dataset"]["feat_folder"]) == [str(folder / "slowfast"), "/abs/egovlp"]  # absolute kept
    assert load_config(cfg)["dataset"]["json_file"] == cfg["dataset"]["json_file"]  # loaded: means the same anywhere


def test_by_default_relative_paths_stay_relative_to_the_working_directory(tmp_path: Path) -> None:
    path = _write(tmp_path, {"json_file": "./data/ego4d/annotations/ego4d.json", "feat_folder": "./data/feats"})
    cfg = load_config(path)
    assert cfg["dataset"]["paths_relative_to"] == "cwd"
    assert (cfg["dataset"]["json_file"], cfg["dataset"]["feat_folder"]) == ("./data/ego4d/annotations/ego4d.json",
                                                                            "./data/feats")


def test_a_mapping_has_no_folder_to_resolve_against(tmp_path: Path) -> None:
    raw = {"dataset": {"paths_relative_to": "config", "json_file": "a.json", "feat_folder": "f"}}
    assert load_config(raw)["dataset"]["json_file"] == "a.json"
    assert resolve_data_paths(raw, tmp_path / "c.yaml")["dataset"]["json_file"] == str(tmp_path.resolve() / "a.json")
    assert raw["dataset"]["json_file"] == "a.json"  # the input is not changed
    with pytest.raises(ConfigError, match="dataset.paths_relative_to"):
        load_config({"dataset": {"paths_relative_to": "repo"}})
