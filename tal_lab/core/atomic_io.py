"""Atomic file writes: every result file is written to a temporary file and moved into place
with ``os.replace``, so a killed process leaves the old file or the new one, never half of one.
JSON-lines logs are only appended to, and a torn last line is dropped on reading."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

__all__ = ["write_text_atomic", "write_bytes_atomic", "write_json_atomic", "write_csv_atomic", "append_jsonl",
           "read_jsonl", "rewrite_jsonl", "plain_json"]



def _write_atomic(path: str | Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    _write_atomic(path, text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    _write_atomic(path, data)


def plain_json(value: Any) -> Any:
    """JSON-ready copy: NumPy / torch scalars and arrays to Python, NaN to None."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain_json(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (NumPy values converted, NaN as null)."""
    write_text_atomic(path, json.dumps(plain_json(obj), indent=2) + "\n")


def write_csv_atomic(path: str | Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV without its index, atomically (floats in round-trip form)."""
    write_text_atomic(path, frame.to_csv(index=False, float_format=None))


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append one JSON line per record (a log: lines are only ever added, or cut on resume)."""
    lines = "".join(json.dumps(plain_json(r)) + "\n" for r in records)
    if lines:
        with open(path, "a") as handle:
            handle.write(lines)
            handle.flush()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (killed mid-write) is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # the process died while writing this line
            raise ValueError(f"{path}: line {number} is not valid JSON ({err})") from err
    return records


def rewrite_jsonl(path: str | Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Keep only the records for which ``keep`` is true (atomically); returns how many remain."""
    records = [r for r in read_jsonl(path) if keep(r)]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
    return len(records)
