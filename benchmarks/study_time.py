"""Benchmark: where a finished study's wall time went, from the files it left.

For each run notebook the study executed (``REPORTS/_work/runs/*.ipynb``, papermill's recorded
duration) and its run folder (``RUNS/<name>``): training seconds (``results.json`` timings),
evaluation seconds (every evaluation in ``epochs.jsonl``), and the rest of the notebook (kernel
start, imports, data, model, the report cells). Then the totals over the runs, the runs' start
and end on one clock (``run.json`` created / finished), and how long the last run trained alone
at the end (the other slot idle). Nothing is re-run; it reads what a study wrote.

Usage::

    python benchmarks/study_time.py --runs runs --reports reports
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path


def _seconds(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def run_rows(runs: Path, reports: Path) -> list[dict]:
    rows = []
    for notebook in sorted((reports / "_work" / "runs").glob("*.ipynb")):
        name = notebook.stem
        folder = runs / name
        duration = json.loads(notebook.read_text())["metadata"].get("papermill", {}).get("duration")
        if duration is None or not (folder / "results.json").is_file():
            continue  # a notebook that did not finish, or a run from another store
        timings = json.loads((folder / "results.json").read_text()).get("timings", {})
        epochs = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines() if line.strip()]
        evaluation = sum(float(e["eval"]["seconds"]) for e in epochs if e.get("eval"))
        info = json.loads((folder / "run.json").read_text())
        rows.append({"name": name, "notebook": float(duration), "train": float(timings["train_seconds"]),
                     "eval": evaluation, "start": _seconds(info["created"]), "end": _seconds(info["finished"])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the study's run store (--output-root)")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="the study's reports folder")
    args = parser.parse_args()
    rows = run_rows(args.runs, args.reports)
    if not rows:
        raise SystemExit(f"no executed run notebook of {args.reports}/_work/runs has a finished run in {args.runs}")
    origin = min(r["start"] for r in rows)
    print(f"{'run':<80} {'start':>6} {'end':>6} {'notebook':>9} {'train':>7} {'eval':>6} {'other':>6}")
    for r in sorted(rows, key=lambda r: r["start"]):
        other = r["notebook"] - r["train"] - r["eval"]
        print(f"{r['name']:<80} {r['start'] - origin:6.0f} {r['end'] - origin:6.0f} {r['notebook']:9.1f} "
              f"{r['train']:7.1f} {r['eval']:6.1f} {other:6.1f}")
    total = {k: sum(r[k] for r in rows) for k in ("notebook", "train", "eval")}
    other = total["notebook"] - total["train"] - total["eval"]
    ends = sorted(r["end"] for r in rows)
    last = max(rows, key=lambda r: r["end"])
    alone = last["end"] - max(last["start"], ends[-2]) if len(ends) > 1 else 0.0
    print(f"\n{len(rows)} runs; run notebooks in all {total['notebook'] / 60:.1f} min: training {total['train'] / 60:.1f} "
          f"min, evaluation {total['eval'] / 60:.1f} min, the rest (start-up, report cells) {other / 60:.1f} min")
    print(f"first run's start to last run's end: {(ends[-1] - origin) / 60:.1f} min; the last run trained alone for "
          f"{alone:.0f} s at the end")


if __name__ == "__main__":
    main()
