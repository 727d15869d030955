"""The layers of tal_lab (docs/architecture.md) and the direction of their imports.

Every module's imports of ``tal_lab`` are read from its syntax tree, at any depth (module level,
inside functions, under ``TYPE_CHECKING``). A module may import its own layer and the layers
below it; ``models.layers`` never imports the rest of ``models``; ``data`` and ``evaluation``
share a level and do not import each other. ``core`` is the lowest layer and ``config`` the next:
the config validates component names against ``core.registry``, whose built-in table names the
``models`` modules as strings and imports them only when a builder is asked for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tal_lab"

# Lowest first. A layer may import the layers before it in this list, never after.
LAYERS: tuple[str, ...] = ("core", "config", "ops", "models", "data|evaluation", "runs", "engine", "analysis",
                           "study", "cli")
# Modules of the top-level package itself: the version string and `python -m tal_lab`.
ROOT_MODULES = {"tal_lab": -1, "tal_lab.__main__": len(LAYERS)}
# Sub-packages with a stricter rule than their layer's.
INNER_RULES = {"tal_lab.models.layers": ("tal_lab.models.layers",)}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer_of(module: str) -> int:
    if module in ROOT_MODULES:
        return ROOT_MODULES[module]
    top = module.split(".")[1]
    for index, names in enumerate(LAYERS):
        if top in names.split("|"):
            return index
    raise AssertionError(f"{module}: sub-package {top!r} is in no layer of tests/test_architecture.py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("tal_lab")]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the house uses absolute imports)"
            if node.module and node.module.startswith("tal_lab"):
                if node.module == "tal_lab":  # `from tal_lab import engine` imports a sub-package
                    found += [(node.lineno, f"tal_lab.{alias.name}") for alias in node.names
                              if not alias.name.startswith("__")]
                else:
                    found.append((node.lineno, node.module))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    for path in MODULES:
        _layer_of(_module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_down_the_layers(path: Path) -> None:
    module = _module_name(path)
    own = _layer_of(module)
    wrong = []
    for line, target in _imports(path):
        if target == "tal_lab":
            continue  # the version string
        level = _layer_of(target)
        same_level_other = level == own and target.split(".")[1] != module.split(".")[1] and own >= 0
        if level > own or same_level_other:
            wrong.append(f"line {line}: {target} ({LAYERS[level]}) from {LAYERS[own] if own >= 0 else 'tal_lab'}")
        for inner, allowed in INNER_RULES.items():
            if module.startswith(inner) and target.startswith("tal_lab.models") and not target.startswith(allowed):
                wrong.append(f"line {line}: {target} from {inner}, which may import only {allowed}")
    assert not wrong, f"{module} imports upward or sideways:\n" + "\n".join(wrong)


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tal_lab.study.runner import run_study\n")
    assert _imports(bad) == [(2, "tal_lab.study.runner")]
    assert _layer_of("tal_lab.study.runner") > _layer_of("tal_lab.models.detector")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: {len(text.splitlines())} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_architecture_page_names_every_layer() -> None:
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in packages if f"{name}/" not in page]
    assert not missing, f"docs/architecture.md does not show sub-package(s) {missing}"
