"""The repository's promises about itself: dependencies agree, README and CI agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", req.strip())
        assert match, req
        out[match.group(1).lower()] = match.group(2).strip()
    return out


def test_environment_yml_and_pyproject_name_the_same_dependencies() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = dict(_names(project["dependencies"]))
    for extra in project.get("optional-dependencies", {}).values():
        declared.update(_names(extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    in_env = _names([r for r in pip_section if not r.startswith("-e")])
    assert in_env == declared


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    marker = ci.index("# --- test command (keep identical to the README) ---")
    command = ci[marker + 1].strip()
    assert "pytest" in command
    assert command in (ROOT / "README.md").read_text()
