"""Notebook parameters to a validated config, so a bad parameter fails in a notebook's first cells.

Notebooks take plain literals (papermill ``-p name value``); this module checks each one
against its choices and builds the ActionFormer-schema config the engine trains, raising
:class:`NotebookParameterError` (a ``ValueError``) whose message names the parameter, the bad
value and what would be accepted.

Datasets and presets:

* ``dataset='synthetic'``: the built-in THUMOS14-shaped benchmark. ``data_root`` may be empty
  (the data is generated once under ``data/synthetic/<preset>`` in the project) or a folder
  (generated there if it holds no ``config.yaml``). Presets map to the generator's presets:
  ``tiny`` (tests), ``quick`` (one configuration in about two minutes on 2 CPU cores),
  ``paper`` (full THUMOS14 shapes, the paper's 30 epochs).
* ``dataset`` in ``thumos14``, ``anet``, ``epic``: real features in ActionFormer's layout under
  ``data_root`` (required). The config comes from ``config_file`` (e.g. an official
  ActionFormer YAML), else ``data_root/config.yaml``, else ActionFormer's published settings
  for that dataset with the annotation JSON and feature folder found in ``data_root``.
  ``paper`` keeps the model and schedule of that config (30 epochs on THUMOS14, as Table I);
  ``quick`` / ``tiny`` shrink the model and schedule as the synthetic presets do, for smoke
  tests on a CPU.

Relative paths (``data_root``, ``output_root``, ``output_dir``) are taken relative to the
project root (the folder holding ``pyproject.toml`` and ``tal_lab/``) when the working directory
is inside a checkout, so the same parameters work from papermill at the root and from
JupyterLab in ``notebooks/``; elsewhere they are relative to the working directory.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from tal_lab.config import ConfigError, apply_overrides, load_config
from tal_lab.config.published import published_config
from tal_lab.core.registry import BACKBONES, HEADS, NECKS
from tal_lab.data.synthetic import generate_synthetic
from tal_lab.data.synthetic_spec import get_preset
from tal_lab.data.validate import resolve_settings
from tal_lab.runs import default_run_name
from tal_lab.study.paper_results import TABLE1_EPOCHS

__all__ = [
    "NotebookParameterError",
    "BACKBONE_CHOICES",
    "NECK_CHOICES",
    "HEAD_CHOICES",
    "DATASETS",
    "STUDY_PRESETS",
    "STUDY_TO_SYNTHETIC_PRESET",
    "AblationSetup",
    "project_root",
    "resolve_path",
    "check_choice",
    "check_device",
    "synthetic_folder",
    "synthetic_data",
    "base_config",
    "ablation_setup",
    "backbone_parameter",
    "data_filter",
    "set_num_threads",
    "output_folder",
]


class NotebookParameterError(ValueError):
    """A notebook parameter is invalid; the message names it, its value and the valid choices."""


# Parameter value -> config value. The notebooks speak the registered names of tal_lab.core.registry
# (model.backbone_type, fpn_type, head_type); 'transformer' stays accepted as a short alias of
# 'convTransformer'.
BACKBONE_CHOICES: dict[str, str] = {**{name: name for name in BACKBONES.names()}, "transformer": "convTransformer"}
NECK_CHOICES: dict[str, str] = {name: name for name in NECKS.names()}
HEAD_CHOICES: tuple[str, ...] = tuple(HEADS.names())
DATASETS: dict[str, str] = {"synthetic": "synthetic", "thumos14": "thumos", "anet": "anet", "epic": "epic"}
# The study's presets (model size and schedule); the synthetic benchmark's own presets are
# tal_lab.data.synthetic_spec.SYNTHETIC_PRESETS.
STUDY_PRESETS: tuple[str, ...] = ("tiny", "quick", "paper")
# The synthetic generator's preset behind each study preset.
STUDY_TO_SYNTHETIC_PRESET: dict[str, str] = {"tiny": "tiny", "quick": "quick", "paper": "thumos14"}

# Where ActionFormer's README puts each dataset (annotation JSON, feature folder), relative
# to data_root, tried before searching the folder.
_LAYOUTS: dict[str, tuple[str, str]] = {
    "thumos": ("annotations/thumos14.json", "i3d_features"),
    "anet": ("annotations/anet1.3_tsp_filtered.json", "tsp_features"),
    "epic": ("annotations/epic_kitchens_100_verb.json", "features"),
}


def project_root(start: str | Path | None = None) -> Path | None:
    """The tal_lab checkout containing ``start`` (default: the working directory), or None."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "tal_lab" / "__init__.py").is_file():
            return folder
    return None


def resolve_path(value: str | Path, base: str | Path | None = None) -> Path:
    """An absolute path: ``value`` itself if absolute, else relative to ``base`` (default: the
    project root when inside a checkout, else the working directory)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if base is None:
        base = project_root() or Path.cwd()
    return (Path(base) / path).resolve()


def check_choice(name: str, value: Any, choices: Sequence[str] | Mapping[str, Any]) -> str:
    """``value`` if it is one of ``choices``, else a NotebookParameterError naming ``name``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise NotebookParameterError(f"parameter {name}={value!r} is not valid; choose one of {' | '.join(options)}")
    return value


def check_device(value: Any) -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N'."""
    if isinstance(value, str) and (value in ("auto", "cpu", "cuda")
                                   or (value.startswith("cuda:") and value[5:].isdigit())):
        return value
    raise NotebookParameterError(f"parameter device={value!r} is not valid; choose auto | cpu | cuda | cuda:N")


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if allow_none else ""
        raise NotebookParameterError(f"parameter {name}={value!r} must be an integer >= {minimum}{extra}")
    return value


def backbone_parameter(backbone_type: str) -> str:
    """The notebook name of a config backbone_type (the same name; aliases are never returned)."""
    for name, value in BACKBONE_CHOICES.items():
        if value == backbone_type:
            return name
    raise NotebookParameterError(f"backbone_type {backbone_type!r} has no notebook name; "
                                 f"known: {list(BACKBONE_CHOICES.values())}")


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``folder`` (parallel notebooks generating the same data)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.with_name(folder.name + ".lock")
    with open(lock_path, "w") as handle:
        try:  # fcntl is POSIX-only: imported here so that the module imports on Windows too
            import fcntl
        except ImportError:  # Windows: no advisory locks; generation is then not shared safely
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synthetic_folder(preset: str, data_root: str | Path = "") -> Path:
    """Where the synthetic benchmark of ``preset`` lives: ``data_root``, else
    ``data/synthetic/<generator preset>`` in the project."""
    check_choice("preset", preset, STUDY_PRESETS)
    return resolve_path(data_root or f"data/synthetic/{STUDY_TO_SYNTHETIC_PRESET[preset]}")


def synthetic_data(preset: str, data_root: str | Path = "", seed: int = 0) -> Path:
    """The config.yaml of the synthetic benchmark for ``preset`` ('tiny', 'quick', 'paper'),
    generating the data first if ``data_root`` (default ``data/synthetic/<generator preset>``)
    holds none."""
    folder = synthetic_folder(preset, data_root)
    generator_preset = STUDY_TO_SYNTHETIC_PRESET[preset]
    config_path = folder / "config.yaml"
    if config_path.is_file():
        return config_path
    if folder.exists() and not folder.is_dir():
        raise NotebookParameterError(f"parameter data_root={str(data_root)!r} is a file, not a folder")
    with _folder_lock(folder):
        if not config_path.is_file():  # another process may have generated it meanwhile
            print(f"generating the synthetic '{generator_preset}' benchmark in {folder} (once)", flush=True)
            generate_synthetic(folder, preset=generator_preset, seed=seed)
    return config_path


def _locate(data_root: Path, value: Any, what: str, dataset: str) -> str:
    """A path from a config, found as given, under data_root, or by its last parts under data_root."""
    if value in (None, ""):
        raise NotebookParameterError(f"the config for dataset {dataset!r} does not name its {what}")
    path = Path(str(value)).expanduser()
    candidates = [path] if path.is_absolute() else [path, data_root / path, data_root / Path(*path.parts[-2:]),
                                                      data_root / path.name]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise NotebookParameterError(f"{what} {str(value)!r} of dataset {dataset!r} was not found (looked at "
                                 f"{', '.join(str(c) for c in candidates)})")


def _real_data_config(dataset: str, data_root: Path, config_file: str) -> dict[str, Any]:
    name = DATASETS[dataset]
    if config_file:
        cfg = load_config(resolve_path(config_file))
    elif (data_root / "config.yaml").is_file():
        cfg = load_config(data_root / "config.yaml")
    else:
        # ActionFormer's published settings (tal_lab.config.published); pass the YAML you trained
        # with as config_file for other values. Paths are filled from data_root.
        base = published_config(name)
        json_rel, feat_rel = _LAYOUTS[name]
        if not (data_root / json_rel).is_file() or not (data_root / feat_rel).is_dir():
            found, _ = resolve_settings(data_root)
            json_rel = found.get("json_file") or json_rel
            feat_rel = found.get("feat_folder") or feat_rel
        base["dataset_name"] = name
        base["dataset"].update({"json_file": json_rel, "feat_folder": feat_rel})
        cfg = load_config(base)
    if cfg["dataset_name"] != name:
        raise NotebookParameterError(f"parameter dataset={dataset!r} but the config says dataset_name "
                                     f"{cfg['dataset_name']!r}; use dataset={_parameter_of(cfg['dataset_name'])!r}")
    ds = cfg["dataset"]
    overrides = {"dataset": {"json_file": _locate(data_root, ds["json_file"], "annotation file (json_file)", dataset),
                             "feat_folder": _locate(data_root, ds["feat_folder"], "feature folder (feat_folder)",
                                                    dataset)}}
    # ActivityNet's published recipe fuses external video-level scores: a relative path of the
    # recipe is looked up under data_root like the annotations.
    if cfg["test_cfg"]["ext_score_file"]:
        overrides["test_cfg"] = {"ext_score_file": _locate(data_root, cfg["test_cfg"]["ext_score_file"],
                                                           "external score file (test_cfg.ext_score_file)", dataset)}
    return apply_overrides(cfg, overrides)


def _parameter_of(dataset_name: str) -> str:
    return next((k for k, v in DATASETS.items() if v == dataset_name), dataset_name)


def base_config(dataset: str, data_root: str | Path, preset: str, config_file: str = "") -> dict[str, Any]:
    """The dataset's config before any ablation parameter: data paths, model size, schedule.

    Raises:
        NotebookParameterError: unknown dataset / preset, a real dataset without data_root, a
            data_root or config_file that does not exist, or annotation / feature paths not found.
    """
    check_choice("dataset", dataset, DATASETS)
    check_choice("preset", preset, STUDY_PRESETS)
    if not isinstance(data_root, (str, Path)):
        raise NotebookParameterError(f"parameter data_root={data_root!r} must be a path (string)")
    if not isinstance(config_file, str):
        raise NotebookParameterError(f"parameter config_file={config_file!r} must be a path (string)")
    if config_file and not resolve_path(config_file).is_file():
        raise NotebookParameterError(f"parameter config_file={config_file!r}: no such file "
                                     f"({resolve_path(config_file)})")
    if dataset == "synthetic":
        return load_config(resolve_path(config_file) if config_file else synthetic_data(preset, data_root))
    if not str(data_root):
        raise NotebookParameterError(
            f"parameter data_root is required for dataset {dataset!r}: the folder with its ActionFormer-format "
            f"annotation JSON and features (e.g. data/thumos with annotations/thumos14.json and i3d_features/); "
            f"use dataset='synthetic' to run without data")
    root = resolve_path(data_root)
    if not root.is_dir():
        raise NotebookParameterError(f"parameter data_root={str(data_root)!r}: no such folder ({root})")
    cfg = _real_data_config(dataset, root, config_file)
    if preset == "paper":
        return apply_overrides(cfg, {"opt": {"epochs": TABLE1_EPOCHS}}) if cfg["dataset_name"] == "thumos" else cfg
    small = get_preset(STUDY_TO_SYNTHETIC_PRESET[preset])
    sections = ("model", "opt", "loader", "train_cfg", "engine")
    return apply_overrides(cfg, {key: dict(getattr(small, key, None) or {}) for key in sections})


@dataclass(frozen=True)
class AblationSetup:
    """What ``run_ablation.ipynb`` trains: the config, the run store and the run's name."""

    cfg: dict[str, Any]
    output_root: Path
    run_name: str

    @property
    def run_dir(self) -> Path:
        return self.output_root / self.run_name

    def describe(self) -> str:
        """One line per choice, for the notebook's first output."""
        m, o, t = self.cfg["model"], self.cfg["opt"], self.cfg["train_cfg"]
        ds = self.cfg["dataset"]
        data = (f"synthetic '{ds['synthetic']['preset']}' (seed {ds['synthetic']['seed']})"
                if self.cfg["dataset_name"] == "synthetic" else f"{self.cfg['dataset_name']} at {ds['feat_folder']}")
        return "\n".join([
            f"run:       {self.run_dir}",
            f"model:     backbone {m['backbone_type']}, neck {m['fpn_type']}, head {m['head_type']}, "
            f"width {m['embd_dim']}",
            f"training:  {o['epochs']} epochs (+{o['warmup_epochs'] if o['warmup'] else 0} warm-up), "
            f"lambda_reg {t['loss_weight']}, seed {self.cfg['init_rand_seed']}, device {self.cfg['engine']['device']}",
            f"data:      {data}, input_dim {ds['input_dim']}, {ds['num_classes']} classes",
        ])


def ablation_setup(
    *,
    backbone: str,
    neck: str,
    head: str = "actionformer",
    epochs: int | None = None,
    loss_weight: float = 1.0,
    seed: int | None = None,
    dataset: str = "synthetic",
    data_root: str = "",
    preset: str = "quick",
    device: str = "auto",
    output_root: str = "runs",
    run_name: str = "",
    eval_epochs: Sequence[int] = (),
    config_file: str = "",
    overrides: Sequence[str] = (),
) -> AblationSetup:
    """Check ``run_ablation.ipynb``'s parameters and build the config it trains.

    Cheap checks (choices, types, ranges) come first, so a typo fails before any data is read
    or generated.

    Raises:
        NotebookParameterError: a parameter is invalid (the message names it).
    """
    check_choice("backbone", backbone, BACKBONE_CHOICES)
    check_choice("neck", neck, NECK_CHOICES)
    check_choice("head", head, HEAD_CHOICES)
    check_choice("dataset", dataset, DATASETS)
    check_choice("preset", preset, STUDY_PRESETS)
    check_device(device)
    _check_int("epochs", epochs, 1, allow_none=True)
    _check_int("seed", seed, 0, allow_none=True)
    if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)) or not loss_weight >= 0:
        raise NotebookParameterError(f"parameter loss_weight={loss_weight!r} must be a number >= 0 (lambda_reg)")
    if isinstance(eval_epochs, (str, bytes)) or not all(
            isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in eval_epochs):
        raise NotebookParameterError(f"parameter eval_epochs={eval_epochs!r} must be a list of epochs >= 1")
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise NotebookParameterError(f"parameter overrides={overrides!r} must be a list of 'key=value' strings")
    if not isinstance(output_root, str) or not output_root:
        raise NotebookParameterError(f"parameter output_root={output_root!r} must name the run store folder")
    if not isinstance(run_name, str) or "/" in run_name or run_name in (".", ".."):
        raise NotebookParameterError(f"parameter run_name={run_name!r} must be a folder name ('' for the default)")

    cfg = base_config(dataset, data_root, preset, config_file)
    num_epochs = epochs if epochs is not None else int(cfg["opt"]["epochs"])
    late = [e for e in eval_epochs if e > num_epochs]
    if late:
        raise NotebookParameterError(f"parameter eval_epochs={list(eval_epochs)!r} lists epochs after the last "
                                     f"one ({num_epochs})")
    changes: dict[str, Any] = {
        "model": {"backbone_type": BACKBONE_CHOICES[backbone], "fpn_type": NECK_CHOICES[neck], "head_type": head},
        "opt": {"epochs": num_epochs},
        "train_cfg": {"loss_weight": float(loss_weight)},
        "engine": {"device": device, "eval_epochs": sorted(set(int(e) for e in eval_epochs))},
        "init_rand_seed": int(seed) if seed is not None else int(cfg["init_rand_seed"]),
    }
    try:
        cfg = apply_overrides(cfg, changes)
        if overrides:
            cfg = apply_overrides(cfg, list(overrides))
    except ConfigError as err:
        raise NotebookParameterError(f"the parameters give an invalid config: {err}") from err
    return AblationSetup(cfg=cfg, output_root=resolve_path(output_root), run_name=run_name or default_run_name(cfg))


def data_filter(data_tag: str) -> dict[str, Any] | None:
    """The run-store filter of a ``data_tag`` parameter: '' (None: let the tables choose),
    'synthetic-<preset>' (a synthetic benchmark preset), or a dataset name ('thumos', ...)."""
    if not isinstance(data_tag, str):
        raise NotebookParameterError(f"parameter data_tag={data_tag!r} must be a string")
    if not data_tag:
        return None
    if data_tag.startswith("synthetic-"):
        return {"data_kind": "synthetic", "data_preset": data_tag[len("synthetic-"):]}
    names = set(DATASETS.values()) | set(DATASETS)
    if data_tag not in names:
        raise NotebookParameterError(f"parameter data_tag={data_tag!r} is not valid; use '', synthetic-<preset> "
                                     f"or one of {sorted(set(DATASETS.values()))}")
    return {"dataset": DATASETS.get(data_tag, data_tag)}


def set_num_threads(num_threads: int) -> int:
    """Limit torch's CPU threads (0 leaves torch's default); returns the threads in use."""
    _check_int("num_threads", num_threads, 0)
    if num_threads:
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def output_folder(output_dir: str, default: str | Path) -> Path:
    """The folder a notebook writes its files to: ``output_dir`` or ``default`` (created)."""
    if not isinstance(output_dir, str):
        raise NotebookParameterError(f"parameter output_dir={output_dir!r} must be a path (string)")
    folder = resolve_path(output_dir) if output_dir else resolve_path(default)
    if folder.exists() and not folder.is_dir():
        raise NotebookParameterError(f"parameter output_dir={output_dir!r} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
