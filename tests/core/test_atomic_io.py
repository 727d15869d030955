"""tal_lab.core.atomic_io: atomic writers and the JSON-lines log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tal_lab.core.atomic_io import append_jsonl, read_jsonl, rewrite_jsonl, write_json_atomic


def test_jsonl_tolerates_a_torn_last_line_and_rewrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    append_jsonl(path, [{"epoch": 1}, {"epoch": 2}])
    with open(path, "a") as handle:
        handle.write('{"epoch": 3, "lo')  # killed mid-line
    assert read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]
    assert rewrite_jsonl(path, lambda r: r["epoch"] <= 1) == 1
    assert read_jsonl(path) == [{"epoch": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_json_writer_converts_numpy_and_nan(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "r.json", {"a": np.array([0.5, np.nan]), "b": np.float32(2.0), "c": np.int64(3)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [0.5, None], "b": 2.0, "c": 3}
