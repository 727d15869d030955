"""Derive the THUMOS14 statistics the synthetic benchmark samples from.

Reads ActionFormer's ``thumos14.json`` (e.g. ``../shared/data/thumos14/thumos14.json``) and
writes ``tal_lab/data/thumos14_stats.json``: only derived, anonymous figures (no video ids, no
segments), so the annotation file itself is never shipped:

* per split: one ``[duration_sec, num_instances, num_classes]`` row per video, sorted (the
  joint distribution of video length and action count), and the fps counts;
* per class: name, instance count, number of videos containing it, and quantiles of action
  duration in seconds (every 5 %);
* co-occurrence: how many videos hold each pair of classes;
* the fraction of each video covered by actions (quantiles).

Usage: ``python tools/derive_thumos14_stats.py PATH/thumos14.json [OUT.json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

# Quantile levels stored for every distribution: 0 %, 5 %, ..., 100 %.
QUANTILE_LEVELS = [round(q, 2) for q in np.linspace(0.0, 1.0, 21)]
SPLITS = ("Validation", "Test")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tal_lab" / "data" / "thumos14_stats.json"


def _quantiles(values: list[float]) -> list[float]:
    return [round(float(v), 3) for v in np.quantile(np.asarray(values, dtype=np.float64), QUANTILE_LEVELS)]


def derive_stats(database: dict[str, Any]) -> dict[str, Any]:
    """Derived statistics of an ActionFormer-format THUMOS14 ``database`` mapping."""
    label_names: dict[int, str] = {}
    durations_by_class: dict[int, list[float]] = {}
    videos_by_class: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    coverage: list[float] = []
    splits: dict[str, Any] = {}
    for split in SPLITS:
        rows = []
        fps_counts: Counter[float] = Counter()
        for video in database.values():
            if video["subset"] != split:
                continue
            acts = video["annotations"]
            ids = sorted({int(a["label_id"]) for a in acts})
            rows.append([round(float(video["duration"]), 2), len(acts), len(ids)])
            fps_counts[float(video["fps"])] += 1
            for a in acts:
                label_names[int(a["label_id"])] = a["label"]
                start, end = a["segment"]
                durations_by_class.setdefault(int(a["label_id"]), []).append(end - start)
            videos_by_class.update(ids)
            pairs.update(itertools.combinations(ids, 2))
            covered = sum(min(a["segment"][1], video["duration"]) - a["segment"][0] for a in acts)
            coverage.append(max(0.0, min(1.0, covered / video["duration"])))
        splits[split] = {
            "num_videos": len(rows),
            "videos": sorted(rows),
            "fps_counts": {str(k): v for k, v in sorted(fps_counts.items())},
        }
    classes = [
        {
            "label_id": cid,
            "label": label_names[cid],
            "num_instances": len(durations_by_class[cid]),
            "num_videos": videos_by_class[cid],
            "duration_sec_quantiles": _quantiles(durations_by_class[cid]),
        }
        for cid in sorted(label_names)
    ]
    return {
        "source": "ActionFormer thumos14.json (THUMOS14: 'Validation' trains, 'Test' evaluates)",
        "columns": {"videos": ["duration_sec", "num_instances", "num_classes"]},
        "quantile_levels": QUANTILE_LEVELS,
        "num_classes": len(classes),
        "splits": splits,
        "classes": classes,
        "cooccurring_pairs": [[a, b, n] for (a, b), n in sorted(pairs.items())],
        "action_coverage_quantiles": _quantiles(coverage),
    }


def _format(stats: dict[str, Any]) -> str:
    """JSON with one short list (a video row, a class's quantiles) per line, for readable diffs."""
    text = json.dumps(stats, indent=1)
    # Collapse lists of scalars that json spread over several lines.
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", type=Path, help="ActionFormer-format thumos14.json")
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT, help="output statistics JSON")
    args = parser.parse_args(argv)
    database = json.loads(args.json_file.read_text())["database"]
    stats = derive_stats(database)
    args.out.write_text(_format(stats) + "\n")
    print(f"wrote {args.out} ({sum(s['num_videos'] for s in stats['splits'].values())} videos, "
          f"{stats['num_classes']} classes)")


if __name__ == "__main__":
    main()
