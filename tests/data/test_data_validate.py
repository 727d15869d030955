"""``validate``: every problem of a folder at once, the length check and its suggestions, the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tal_lab.config import dump_config, load_config
from tal_lab.data import build_data_loader, generate_synthetic, validate_dataset
from tal_lab.cli import main as cli_main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_validate")
    generate_synthetic(out, "tiny", seed=2)
    return out


def _copy(tiny: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(tiny, folder)
    (folder / "config.yaml").unlink()
    return folder


def test_every_problem_is_reported_at_once(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path)
    feats = sorted((folder / "features").iterdir())
    feats[0].unlink()
    bad = np.load(feats[1])
    bad[3, 2] = np.nan
    np.save(feats[1], bad)
    np.save(feats[2], np.ones((50, 7), dtype=np.float32))
    anno = json.loads((folder / "annotations.json").read_text())
    video_id, video = sorted(anno["database"].items())[3]
    video["annotations"][0]["segment"] = [video["duration"] + 5, video["duration"] + 1]
    (folder / "annotations.json").write_text(json.dumps(anno))
    cfg = load_config(tiny / "config.yaml", {"dataset": {"json_file": str(folder / "annotations.json"),
                                                          "feat_folder": str(folder / "features")}})
    report = validate_dataset(folder, cfg)
    codes = sorted(p.code for p in report.errors)
    assert codes == ["dim", "missing_file", "non_finite", "segment_order"], report.format()
    text = report.format()
    assert feats[0].stem in text and feats[1].stem in text and feats[2].stem in text and video_id in text
    assert "FAILED" in text and not report.ok


def test_wrong_stride_is_caught_with_the_settings_that_fit(tiny: Path) -> None:
    cfg = load_config(tiny / "config.yaml", {"dataset": {"feat_stride": 8}})
    report = validate_dataset(tiny, cfg, check_values=False)
    assert [p.code for p in report.errors] == ["settings_mismatch"]
    assert report.lengths is not None and report.lengths.median_ratio == pytest.approx(2.0, abs=0.1)
    assert any("feat_stride: 4, num_frames: 16" in s for s in report.suggestions), report.suggestions
    # A wrong fps (default_fps overrides the JSON) is caught the same way, with the fps that fits.
    report = validate_dataset(tiny, load_config(tiny / "config.yaml", {"dataset": {"default_fps": 15}}))
    assert [p.code for p in report.errors] == ["settings_mismatch"]
    assert any("fps of about 30.0" in s and "default_fps is 15" in s for s in report.suggestions), report.suggestions


def test_settings_are_inferred_without_a_config(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path)
    report = validate_dataset(folder)
    assert report.ok and "inferred" in report.settings_source
    assert report.settings["input_dim"] == 16 and report.settings["file_ext"] == ".npy"
    assert report.lengths is not None and report.lengths.feat_stride == 4 and report.lengths.num_frames == 16


def test_inference_finds_a_file_prefix(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path)
    for path in (folder / "features").iterdir():
        path.rename(path.with_name("v_" + path.name))
    report = validate_dataset(folder, check_values=False)
    assert report.ok and report.settings["file_prefix"] == "v_", report.format()


def test_cli_validate_and_synth(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["data", "validate", str(tiny)]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["data", "validate", str(tiny), "--config", str(tiny / "config.yaml"), "--shapes-only"]) == 0
    out = tmp_path / "synth"
    assert cli_main(["data", "synth", "--preset", "tiny", str(out), "--seed", "2", "--knob", "snr=0"]) == 0
    assert "config:" in capsys.readouterr().out
    assert load_config(out / "config.yaml")["dataset"]["synthetic"]["knobs"]["snr"] == 0.0
    broken = _copy(tiny, tmp_path)
    next((broken / "features").iterdir()).unlink()
    # From the shell, as users run it: exit status 1 and the problem named.
    result = subprocess.run([sys.executable, "-m", "tal_lab", "data", "validate", str(broken)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "feature file does not exist" in result.stdout


def test_a_generated_folder_copied_elsewhere_validates_and_loads_there(tmp_path: Path) -> None:
    original = tmp_path / "original"
    generate_synthetic(original, "tiny", seed=5)
    assert str(original) not in (original / "config.yaml").read_text()  # nothing names the old place
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    report = validate_dataset(moved)
    assert report.ok and not report.problems, report.format()
    cfg = load_config(moved / "config.yaml")
    assert cfg["dataset"]["json_file"] == str(moved.resolve() / "annotations.json")
    assert cfg["dataset"]["feat_folder"] == str(moved.resolve() / "features")
    loader = build_data_loader(cfg, "train")
    videos = next(iter(loader))
    assert len(videos) == cfg["loader"]["batch_size"] and videos[0]["feats"].shape[0] == 16


def test_data_paths_outside_the_validated_folder_are_a_warning(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny, folder)
    # A config written with the original's absolute paths (as generated configs were before).
    dump_config(load_config(tiny / "config.yaml"), folder / "config.yaml")
    report = validate_dataset(folder)
    outside = [p for p in report.warnings if p.code == "outside_folder"]
    assert [p.file for p in outside] == [str(tiny.resolve() / "annotations.json"), str(tiny.resolve() / "features")]
    assert all(f"lies outside the validated folder {folder}" in p.message for p in outside)
    assert report.ok and "outside the validated folder" in report.format()
    # The same config, validated where it points, has nothing to say.
    assert not [p for p in validate_dataset(tiny, folder / "config.yaml").warnings if p.code == "outside_folder"]
