"""``validate``: check a whole dataset folder before training and report every problem at once.

Settings come from a config (given, or ``config.yaml`` in the folder, as the synthetic
generator writes it) or, without one, are inferred from the folder: the annotation JSON, the
feature folder, file extension and prefix, input_dim, and feat_stride / num_frames fitted from
the feature lengths. With a config, the feature files are looked up where the dataset class
loads them (:class:`~tal_lab.data.layout.FeatureLayout`: Ego4D's several folders, HACS's
per-split folders), and a data path outside the validated folder is a warning: the files
checked are not the folder's own (a copied folder whose config still points at the original).

The length check catches the commonest cause of near-zero mAP, a wrong fps, feat_stride or
num_frames: a video of N = duration x fps frames has between (N - num_frames) / feat_stride + 1
(windows that fit) and N / feat_stride + 1 (padded windows) features. Videos outside that
range (by more than 2 steps or 2 %) are reported; when most videos are, the settings are
wrong for the whole folder and the report gives the settings that fit, from a least-squares
fit of N = feat_stride x (T - 1) + num_frames over all videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tal_lab.config import load_config
from tal_lab.data.annotations import MISSING_DURATION_SEC, VideoRecord, load_database, parse_annotations
from tal_lab.data.build import DATASETS
from tal_lab.data.errors import DataError, Problem, format_problems
from tal_lab.data.features import feature_path, feature_shape
from tal_lab.data.layout import FeatureLayout
from tal_lab.data.lengths import LengthCheck, check_lengths

__all__ = ["ValidationReport", "validate_dataset", "resolve_settings"]

CONFIG_NAME = "config.yaml"
# Folders searched below the given one for an annotation JSON / feature folder.
_SEARCH_DEPTH = 3
_FEATURE_EXTS = (".npy", ".npz")


@dataclass
class ValidationReport:
    """What ``validate`` found; ``ok`` is True when there is no error."""

    folder: Path
    settings: dict[str, Any]
    settings_source: str
    videos_per_subset: dict[str, int] = field(default_factory=dict)
    num_labels: int = 0
    problems: list[Problem] = field(default_factory=list)
    lengths: LengthCheck | None = None
    suggestions: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self, limit: int = 50) -> str:
        """The report as text: settings, counts, length check, every problem, suggestions."""
        s = self.settings
        lines = [f"validate {self.folder} (settings {self.settings_source})",
                 f"  annotations: {s.get('json_file')}: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(self.videos_per_subset.items()))
                 + f"; {self.num_labels} labels",
                 f"  features:    {s.get('feat_folder')}: {s.get('file_prefix') or ''}<video_id>{s.get('file_ext')}, "
                 f"input_dim {s.get('input_dim')}"]
        if self.lengths is not None:
            lines.append(f"  lengths:     {self.lengths.summary()}")
        lines.append(f"  problems:    {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        if self.problems:
            lines.append(format_problems(self.errors + self.warnings, limit=limit))
        lines += [f"suggestion: {text}" for text in self.suggestions]
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)


def _find_jsons(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.json")):
        if len(path.relative_to(folder).parts) > _SEARCH_DEPTH + 1:
            continue
        try:
            load_database(path)
        except DataError:
            continue
        found.append(path)
    return found


def _find_feature_folder(folder: Path) -> tuple[Path | None, str]:
    counts: dict[tuple[Path, str], int] = {}
    for path in folder.rglob("*"):
        if path.suffix in _FEATURE_EXTS and len(path.relative_to(folder).parts) <= _SEARCH_DEPTH + 1:
            counts[(path.parent, path.suffix)] = counts.get((path.parent, path.suffix), 0) + 1
    if not counts:
        return None, ".npy"
    (best, ext), _ = max(counts.items(), key=lambda kv: (kv[1], str(kv[0][0])))
    return best, ext


def _infer_prefix(feat_folder: Path, ext: str, video_ids: list[str]) -> str:
    names = {p.name for p in feat_folder.iterdir() if p.suffix == ext}
    votes: dict[str, int] = {}
    for vid in video_ids[:50]:
        for name in names:
            if name.endswith(vid + ext):
                prefix = name[: len(name) - len(vid + ext)]
                votes[prefix] = votes.get(prefix, 0) + 1
    return max(votes, key=lambda k: (votes[k], -len(k))) if votes else ""


def resolve_settings(path: str | Path, config: str | Path | Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """The dataset settings to check ``path`` with, and where they came from.

    Returns:
        (settings, source): settings holds dataset_name, the config's ``dataset`` keys,
        ``splits`` (None: every subset) and, from a config, ``train_split`` / ``val_split``;
        source describes the config or says 'inferred'.
    """
    folder = Path(path)
    if config is None and folder.is_file() and folder.suffix in (".yaml", ".yml"):
        config, folder = folder, folder.parent
    if config is None and (folder / CONFIG_NAME).is_file():
        config = folder / CONFIG_NAME
    if config is not None:
        cfg = load_config(config)
        settings = dict(cfg["dataset"])
        settings["dataset_name"] = cfg["dataset_name"]
        settings["train_split"], settings["val_split"] = list(cfg["train_split"]), list(cfg["val_split"])
        settings["splits"] = settings["train_split"] + settings["val_split"]
        base = Path(config).parent if not isinstance(config, Mapping) else folder
        settings["json_file"] = str(_locate(settings["json_file"], base, folder))
        feat = settings["feat_folder"]
        settings["feat_folder"] = ([str(_locate(f, base, folder)) for f in feat] if isinstance(feat, (list, tuple))
                                   else str(_locate(feat, base, folder)))
        source = f"from {config}" if not isinstance(config, Mapping) else "from the given config"
        return settings, source
    jsons = _find_jsons(folder)
    feat_folder, ext = _find_feature_folder(folder)
    settings = {"dataset_name": "epic" if ext == ".npz" else "thumos", "json_file": str(jsons[0]) if jsons else None,
                "feat_folder": str(feat_folder) if feat_folder else None, "file_ext": ext, "file_prefix": None,
                "default_fps": None, "feat_stride": None, "num_frames": None, "input_dim": None,
                "num_classes": None, "splits": None, "force_upsampling": False, "downsample_rate": 1,
                "candidate_jsons": [str(j) for j in jsons]}
    return settings, "inferred from the folder (no config given and no config.yaml in it)"


def _locate(value: Any, base: Path, folder: Path) -> Path:
    """A config path as ActionFormer reads it (relative to the working directory), else
    relative to the config file, else relative to the folder being validated."""
    path = Path(str(value))
    for candidate in (path, base / path, folder / path):
        if candidate.exists():
            return candidate
    return path


def validate_dataset(
    path: str | Path,
    config: str | Path | Mapping[str, Any] | None = None,
    check_values: bool = True,
) -> ValidationReport:
    """Check a dataset folder: annotations, every feature file, and feature lengths.

    Args:
        path: the dataset folder (or a config YAML).
        config: a config (YAML path or dict) giving the dataset settings; by default the
            folder's ``config.yaml``, else settings inferred from the folder.
        check_values: read every feature file whole to look for NaN / inf (otherwise only
            shapes are read, memory-mapped).

    Returns:
        A ValidationReport holding every problem (it never raises for bad data).
    """
    settings, source = resolve_settings(path, config)
    report = ValidationReport(Path(path), settings, source)
    inferred = settings["splits"] is None
    if not inferred:
        report.problems += _outside_folder(settings, _validated_folder(Path(path)))
    json_file = settings["json_file"]
    if json_file is None:
        report.problems.append(Problem("error", "missing_json", str(path), None,
                                       "no ActionFormer-format annotation JSON (with a 'database') found"))
        return report
    if len(settings.get("candidate_jsons", [])) > 1:
        report.problems.append(Problem("warning", "several_jsons", str(path), None,
                                       f"several annotation JSONs found, checked the first: {settings['candidate_jsons']}"))
    try:
        database = load_database(json_file)
    except DataError as err:
        report.problems.append(Problem("error", "missing_json" if isinstance(err, FileNotFoundError) else "json",
                                       str(json_file), None, str(err)))
        return report
    if inferred:
        _infer_from_data(settings, database)
    splits = settings["splits"] or sorted({str(v.get("subset")) for v in database.values() if isinstance(v, dict)})
    dataset_class = DATASETS[settings["dataset_name"]]
    rules = dataset_class.annotation_rules(settings)
    parsed = parse_annotations(database, json_file, splits, int(settings["num_classes"] or 1), settings["default_fps"],
                               **{**rules, "exact_label_map": rules["exact_label_map"] and not inferred})
    report.problems += parsed.problems
    report.num_labels = len(parsed.label_map)
    for video in parsed.videos:
        report.videos_per_subset[video.subset] = report.videos_per_subset.get(video.subset, 0) + 1
    if inferred and settings["feat_folder"] is not None and Path(settings["feat_folder"]).is_dir() \
            and settings["input_dim"] is None:
        _infer_features(settings, parsed.videos)
    if settings["feat_folder"] is None:
        report.problems.append(Problem("error", "missing_feat_folder", str(path), None,
                                       "no feature folder found (dataset.feat_folder)"))
        return report
    layouts = _layouts(settings, dataset_class)
    missing = sorted({str(f) for layout in layouts.values() for f in layout.missing_folders()})
    if missing:
        report.problems += [Problem("error", "missing_feat_folder", f, None,
                                    "feature folder does not exist (dataset.feat_folder)") for f in missing]
        return report
    lengths = _check_feature_files(report, layouts, parsed.videos, check_values)
    report.lengths = check_lengths(lengths, settings, fitted=inferred)
    report.problems += report.lengths.problems(str(json_file))
    report.suggestions += report.lengths.suggestions
    return report


def _validated_folder(path: Path) -> Path:
    """The folder ``validate`` checks: PATH, or the folder of a config YAML given as PATH."""
    return path.parent if path.is_file() and path.suffix in (".yaml", ".yml") else path


def _outside_folder(settings: Mapping[str, Any], folder: Path) -> list[Problem]:
    """A warning for each data path of the config that lies outside the validated folder."""
    feat = settings["feat_folder"]
    paths = [("json_file", settings["json_file"])] + [
        ("feat_folder", f) for f in (feat if isinstance(feat, (list, tuple)) else [feat])]
    root = folder.resolve()
    problems = []
    for key, value in paths:
        if value is None:
            continue
        resolved = Path(str(value)).resolve()
        if resolved != root and root not in resolved.parents:
            problems.append(Problem(
                "warning", "outside_folder", str(value), None,
                f"dataset.{key} lies outside the validated folder {folder}, so the files checked are not "
                f"the folder's own (a copied folder whose config still names the original?)"))
    return problems


def _layouts(settings: Mapping[str, Any], dataset_class: Any) -> dict[str, FeatureLayout]:
    """The feature layout of each subset to check (lower-case subset name -> layout; '' for any)."""
    if settings.get("train_split") is None:
        layout = FeatureLayout((Path(str(settings["feat_folder"])),), settings["file_prefix"] or "",
                               str(settings["file_ext"]), (_as_dim(settings["input_dim"]),),
                               _as_dim(settings["input_dim"]) or 0)
        return {"": layout}
    layouts = {}
    # Later entries win: a subset in both lists is read from the training layout, as training reads it.
    for split in (settings["val_split"], settings["train_split"]):
        layout = dataset_class.feature_layout(settings, split)
        layouts.update({name.lower(): layout for name in split})
    return layouts


def _as_dim(value: Any) -> int | None:
    return None if value is None else int(value)


def _infer_from_data(settings: dict[str, Any], database: Mapping[str, Any]) -> None:
    ids = [a.get("label_id") for v in database.values() if isinstance(v, dict)
           for a in (v.get("annotations") or []) if isinstance(a, dict)]
    ints = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
    settings["num_classes"] = max(ints) + 1 if ints else 1


def _infer_features(settings: dict[str, Any], videos: list[VideoRecord]) -> None:
    folder, ext = Path(settings["feat_folder"]), settings["file_ext"]
    settings["file_prefix"] = _infer_prefix(folder, ext, [v.video_id for v in videos]) or None
    for video in videos:
        shape, _ = feature_shape(feature_path(folder, settings["file_prefix"], video.video_id, ext), video.video_id)
        if shape is not None and len(shape) == 2:
            settings["input_dim"] = int(shape[1])
            return


def _check_feature_files(
    report: ValidationReport, layouts: Mapping[str, FeatureLayout], videos: list[VideoRecord], check_values: bool
) -> list[tuple[VideoRecord, int]]:
    lengths = []
    for video in videos:
        layout = layouts.get(video.subset.lower()) or layouts[""]
        num_steps, problems = layout.check(video.video_id, check_values)
        report.problems += problems
        if num_steps is not None and video.duration_sec != MISSING_DURATION_SEC:
            lengths.append((video, num_steps))
    return lengths
