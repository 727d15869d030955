"""Tables I-III (and the head ablation) of the study, built from the run store.

Each builder takes :func:`tal_lab.runs.load_runs` (and, for Table II, optionally
:func:`tal_lab.runs.load_epoch_evals`) and returns a :class:`~tal_lab.analysis.study_table.StudyTable`
with, per row: the number of seeds, the mean of each mAP over seeds (± the sample standard
deviation when there are several), the paper's number beside it and the difference
(ours − paper). The caption states the data the runs used (synthetic preset and data seed, or
the real dataset and feature folder), the seeds, epochs and evaluated weights and the machine
(the torch device each run recorded); the paper's numbers are always labelled THUMOS14, and a
table of synthetic runs says that its differences compare different data. Tables I and IV
mark rows by the combined seed-and-video test (:mod:`tal_lab.study.table_captions`).

Run selection, shared by all tables: only finished runs (:func:`tal_lab.runs.run_status`); one data
identity per table (``data`` picks it; by default real data before synthetic, then the identity
with most runs; the others are named in a note); per seed the latest run. A row without runs
stays in the table with empty numbers and a note — never a crash.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from tal_lab.analysis.complexity import model_complexity
from tal_lab.analysis.study_table import StudyTable, format_diff, format_mean_std, format_number
from tal_lab.config import PAPER_CONFIGURATIONS
from tal_lab.evaluation.significance import SeedVideoTest
from tal_lab.runs import RUN_FILES
from tal_lab.study import paper_results as paper
from tal_lab.study.table_captions import (machine_sentence, mark_significant, newest_per, precision_part,
                                          significance_sentence, spread_sentence)

__all__ = ["DATASET_LABELS", "select_data", "describe_data", "describe_identity", "table_configurations",
           "table_epochs", "table_loss_weight", "table_heads", "study_tables"]

DATASET_LABELS = {"thumos": "THUMOS14", "anet": "ActivityNet-1.3", "epic": "EPIC-Kitchens-100"}
_DATA_KEYS = ("data_kind", "dataset", "data_preset", "data_seed")
_DEFAULT_HEAD = "actionformer"
_BACKBONE_NAMES = {"convTransformer": "Transformer", "conv": "1D conv", "sgp": "SGP", "maxpool": "Max-pool"}
_NECK_NAMES = {"identity": "original neck", "fpn": "refined FPN neck"}
_SHORT = {"mAP@0.3": "mAP@0.3", "mAP@0.4": "mAP@0.4", "mAP@0.5": "mAP@0.5", "mAP@0.6": "mAP@0.6",
          "mAP@0.7": "mAP@0.7", "avg_mAP": "Avg mAP"}


# ------------------------------------------------------------------------------ selection
def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs (``status`` of :func:`tal_lab.runs.run_status`), head defaulting to
    ActionFormer's (runs recorded before the head was)."""
    if runs.empty and "status" not in runs.columns:  # a store with no runs at all
        runs = pd.DataFrame(columns=["status", "avg_mAP", "backbone", "neck", "head", "loss_weight", "epochs", "seed"])
    missing = [c for c in ("status", "avg_mAP") if c not in runs.columns]
    if missing:
        raise ValueError(f"the runs frame lacks {missing} (use tal_lab.runs.load_runs); have {list(runs.columns)}")
    out = runs[runs["status"] == "finished"].copy()
    out["head"] = out["head"].fillna(_DEFAULT_HEAD) if "head" in out.columns else _DEFAULT_HEAD
    return out


def _identity_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(None if (isinstance(row.get(k), float) and math.isnan(row.get(k))) else row.get(k)
                 for k in _DATA_KEYS)


def select_data(runs: pd.DataFrame, data: Mapping[str, Any] | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Runs of one data identity (data_kind, dataset, data_preset, data_seed) and notes.

    Args:
        data: column -> value filters (e.g. ``{'dataset': 'thumos'}``), a dataset name, or
            None: real data before synthetic, then the identity with most runs.
    """
    notes: list[str] = []
    if runs.empty:
        return runs, notes
    for key in _DATA_KEYS:
        if key not in runs.columns:
            runs = runs.assign(**{key: None})
    if isinstance(data, str):
        data = {"dataset": data}
    if data:
        mask = np.ones(len(runs), dtype=bool)
        for key, value in data.items():
            if key not in runs.columns:
                raise ValueError(f"data filter key '{key}' is not a run-store column")
            mask &= (runs[key] == value).to_numpy()
        return runs[mask], notes
    keys = runs.apply(lambda r: _identity_key(r), axis=1)
    counts = keys.value_counts()
    if len(counts) <= 1:
        return runs, notes
    best = sorted(counts.index, key=lambda k: (k[0] != "real", -counts[k], str(k)))[0]
    others = [describe_identity(k) for k in counts.index if k != best]
    notes.append(f"Runs on other data left out: {'; '.join(others)}.")
    return runs[keys == best], notes


def describe_identity(key: Sequence[Any], feat_folder: str | None = None) -> str:
    kind, dataset, preset, seed = key
    if kind == "synthetic" or dataset == "synthetic":
        return f"synthetic data (preset '{preset}', data seed {seed})"
    label = DATASET_LABELS.get(str(dataset), str(dataset))
    return f"{label} (real features{', ' + str(feat_folder) if feat_folder else ''})"


def _feat_folder(runs: pd.DataFrame) -> str | None:
    """The feature folder of the first run (read from its run.json; None if unknown)."""
    for path in runs.get("path", pd.Series(dtype=object)).dropna():
        try:
            info = json.loads((Path(path) / RUN_FILES["info"]).read_text())
            folder = (info.get("dataset") or {}).get("feat_folder")
            if folder:
                return str(folder)
        except (OSError, ValueError):
            continue
    return None


def describe_data(runs: pd.DataFrame) -> str:
    """Words for the data the given runs used (one identity expected)."""
    if runs.empty:
        return "no finished runs"
    keys = sorted({_identity_key(r) for r in runs.to_dict("records")}, key=str)
    return "; ".join(describe_identity(k, None if k[0] == "synthetic" else _feat_folder(runs)) for k in keys)


def _is_synthetic(runs: pd.DataFrame) -> bool:
    def column(name: str) -> pd.Series:
        return runs[name] if name in runs.columns else pd.Series(None, index=runs.index, dtype=object)

    return bool(((column("data_kind") == "synthetic") | (column("dataset") == "synthetic")).any())


def _latest_per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    return newest_per(rows, ["seed"])


def _stats(rows: pd.DataFrame, metrics: Sequence[str]) -> dict[str, Any]:
    """Seed count, seeds, and per metric its mean, sample std (ddof 1; NaN for one seed) and
    count of runs with a value (``{m} n``; the row's ``n_seeds`` unless a run lacks it)."""
    rows = _latest_per_seed(rows)
    out: dict[str, Any] = {"n_seeds": len(rows),
                           "seeds": ",".join(str(s) for s in sorted(rows["seed"].dropna().unique().tolist()))
                           if "seed" in rows.columns else ""}
    for m in metrics:
        values = pd.to_numeric(rows[m], errors="coerce") if m in rows.columns else pd.Series(dtype=float)
        out[m] = float(values.mean()) if len(values.dropna()) else math.nan
        out[f"{m} std"] = float(values.std(ddof=1)) if len(values.dropna()) > 1 else math.nan
        out[f"{m} n"] = int(values.notna().sum())
    for col, how in (("sec_per_epoch", "mean"), ("params", "median")):
        vals = pd.to_numeric(rows[col], errors="coerce").dropna() if col in rows.columns else pd.Series(dtype=float)
        out[col] = float(getattr(vals, how)()) if len(vals) else math.nan
    out["_paths"] = rows["path"].dropna().tolist() if "path" in rows.columns else []
    return out


def _same_data_as_paper(runs: pd.DataFrame) -> bool:
    """Whether every run is on THUMOS14, the paper's data: only then is ours - paper a difference."""
    if runs.empty or _is_synthetic(runs) or "dataset" not in runs.columns:
        return False
    return bool((runs["dataset"] == "thumos").all())


def _add_paper(row: dict[str, Any], metrics: Sequence[str], values: Mapping[str, float] | None,
               with_diff: bool) -> None:
    """The paper's numbers beside ours; ``diff`` columns only when both are on the same data."""
    for m in metrics:
        ref = values.get(m, math.nan) if values else math.nan
        row[f"paper {m}"] = ref
        if with_diff:
            row[f"diff {m}"] = row[m] - ref if not (math.isnan(row[m]) or math.isnan(ref)) else math.nan


def _runs_summary(rows: pd.DataFrame) -> str:
    """'seeds 0,1,2; 30 epochs; EMA weights' for a caption."""
    if rows.empty:
        return "no finished runs"
    parts = []
    seeds = sorted(rows["seed"].dropna().unique().tolist()) if "seed" in rows.columns else []
    if seeds:
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}")
    if "epochs" in rows.columns and rows["epochs"].notna().any():
        ep = sorted(int(e) for e in rows["epochs"].dropna().unique())
        parts.append(f"{'/'.join(str(e) for e in ep)} epochs")
    if "weights" in rows.columns and rows["weights"].notna().any():
        parts.append(f"{'/'.join(sorted(str(w) for w in rows['weights'].dropna().unique()))} weights")
    precision = precision_part(rows)
    if precision:
        parts.append(precision)
    return "; ".join(parts)


def _data_sentence(runs: pd.DataFrame) -> str:
    text = f"Ours: {describe_data(runs)}"
    if _is_synthetic(runs):
        return (text + f". These are SYNTHETIC-data numbers, not {paper.PAPER_DATASET} results: the paper columns "
                f"are {paper.PAPER_DATASET}, shown for orientation only (no difference is taken across datasets).")
    if not runs.empty and not _same_data_as_paper(runs):
        return text + (f". The paper columns are {paper.PAPER_DATASET}, a different dataset, shown for orientation "
                       "only (no difference is taken across datasets).")
    return text + "."


def _delta_note(runs: pd.DataFrame) -> str:
    return "; Δ = ours − paper" if _same_data_as_paper(runs) else ""


def _cell(mean: float, std: float, count: int, row_count: int) -> str:
    """'mean ± std', with '(n=k)' where fewer of the row's runs have this metric."""
    return format_mean_std(mean, std) + (f" (n={count})" if count != row_count and count else "")


def _display_metrics(frame: pd.DataFrame, metrics: Sequence[str], paper_cols: bool) -> dict[str, list[str]]:
    """Display columns per metric: ours (mean ± std), the paper's, and Δ where ``diff`` columns exist."""
    out: dict[str, list[str]] = {}
    for m in metrics:
        short = _SHORT.get(m, m)
        out[short] = [_cell(*cell) for cell in zip(frame[m], frame[f"{m} std"], frame[f"{m} n"], frame["n_seeds"])]
        if paper_cols:
            out[f"{short} paper"] = [format_number(v) for v in frame[f"paper {m}"]]
            if f"diff {m}" in frame.columns:
                out[f"{short} Δ"] = [format_diff(v) for v in frame[f"diff {m}"]]
    return out


# ------------------------------------------------------------------------------ complexity
def _complexity_for(rows: pd.DataFrame, seq_len: int) -> tuple[dict[str, float], str | None]:
    """Params (M), GFLOPs and GMACs at ``seq_len`` for the config of the first run of ``rows``."""
    for path in rows.get("path", pd.Series(dtype=object)).dropna():
        cfg_path = Path(path) / RUN_FILES["config"]
        if not cfg_path.is_file():
            continue
        try:
            c = model_complexity(yaml.safe_load(cfg_path.read_text()), seq_len)
            return {"params_M": c.params / 1e6, "GFLOPs": c.gflops, "GMACs": c.gmacs}, None
        except (ValueError, KeyError, RuntimeError, NotImplementedError) as err:
            return {}, f"complexity of {path} not counted: {err}"
    return {}, None


# ------------------------------------------------------------------------------ builders
RowSpec = tuple[str, str, Mapping[str, Any], Mapping[str, float] | None]  # key, label, filters, paper values


def _choose_epochs(rows: pd.DataFrame, group: Sequence[str]) -> int | None:
    """The epochs value that covers most row groups (ties: more epochs)."""
    if rows.empty or "epochs" not in rows.columns or rows["epochs"].isna().all():
        return None
    cover = rows.groupby("epochs")[list(group)].apply(lambda g: len(g.drop_duplicates()))
    return int(sorted(cover.index, key=lambda e: (-cover[e], -e))[0])


def _match(rows: pd.DataFrame, filters: Mapping[str, Any]) -> pd.DataFrame:
    mask = np.ones(len(rows), dtype=bool)
    for key, value in filters.items():
        col = rows[key] if key in rows.columns else pd.Series([None] * len(rows), index=rows.index)
        mask &= np.isclose(col.astype(float), float(value)) if isinstance(value, float) else (col == value).to_numpy()
    return rows[mask]


def _configuration_table(pool: pd.DataFrame, specs: Sequence[RowSpec], epochs: int | None, complexity: bool,
                         seq_len: int, significance: SeedVideoTest | None,
                         ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Rows of Table I's layout for ``specs`` from the already filtered ``pool``."""
    if epochs is not None:
        pool = _match(pool, {"epochs": epochs})
    frame, notes = _rows(pool, specs, paper.MAP_COLUMNS, complexity, seq_len)
    if significance is not None:
        frame = significance(frame)
    display = {"Configuration": frame["configuration"].tolist(), "n": frame["n_seeds"].astype(str).tolist()}
    display.update(_display_metrics(frame, paper.MAP_COLUMNS, paper_cols=True))
    display["Avg mAP"] = mark_significant(display["Avg mAP"], frame)
    if complexity:
        display.update({"Params (M)": [format_number(v) for v in frame["params_M"]],
                        "GFLOPs": [format_number(v, 1) for v in frame["GFLOPs"]],
                        "GMACs": [format_number(v, 1) for v in frame["GMACs"]]})
    display["s/epoch"] = [format_number(v, 1) for v in frame["sec_per_epoch"]]
    return frame, pd.DataFrame(display), notes


def _complexity_sentence(seq_len: int) -> str:
    return (f" GFLOPs per video at T {seq_len} (2 FLOPs per multiply-accumulate; GMACs is the unit "
            "ActionFormer and TriDet call GFLOPs); s/epoch measured on the machine that trained each run.")


def table_configurations(runs: pd.DataFrame, *, data: Mapping[str, Any] | str | None = None,
                         epochs: int | None = None, loss_weight: float = 1.0, head: str = _DEFAULT_HEAD,
                         complexity: bool = True, seq_len: int = 2304, include_extra: bool = True,
                         significance: SeedVideoTest | None = None) -> StudyTable:
    """Table I: the original configuration and A-E (backbone / neck pairs), plus extra pairs found.

    Columns: key, configuration, backbone, neck, head, n_seeds, seeds, each mAP (mean, std,
    paper, diff), training seconds per epoch, and with ``complexity`` params (M), GFLOPs and
    GMACs per video at ``seq_len`` (:mod:`tal_lab.analysis.complexity`, from the run's config).

    Args:
        epochs: the schedule to show; default the one that covers most configurations.
        include_extra: add rows for backbone / neck pairs in the store that the paper lacks
            (e.g. the max-pool backbone).
        significance: the combined seed-and-video test against the original row
            (:func:`tal_lab.evaluation.significance.paired_significance`): called with the
            numeric frame (the run folders of each row in ``_paths``), it adds the test's
            columns; rows it finds different get '*' and the caption names the test, the seeds
            per side and the rows left untested (None: the caption says no test ran).
    """
    specs: list[RowSpec] = [
        (key, paper.TABLE1_LABELS.get(key, key),
         {"backbone": c["backbone_type"], "neck": c["fpn_type"], "head": head}, paper.TABLE1.get(key))
        for key, c in PAPER_CONFIGURATIONS.items()]
    pool, notes = select_data(_finished(runs), data)
    pool = _match(pool, {"loss_weight": float(loss_weight), "head": head})
    known = {(s[2]["backbone"], s[2]["neck"]) for s in specs}
    if include_extra and not pool.empty:
        for bb, nk in sorted({(b, n) for b, n in zip(pool["backbone"], pool["neck"])} - known, key=str):
            label = f"{_BACKBONE_NAMES.get(bb, bb)} backbone + {_NECK_NAMES.get(nk, nk)}"
            specs.append((f"{bb}+{nk}", label, {"backbone": bb, "neck": nk, "head": head}, None))
    epochs = epochs if epochs is not None else _choose_epochs(pool, ["backbone", "neck"])
    frame, display, extra_notes = _configuration_table(pool, specs, epochs, complexity, seq_len, significance)
    used = _match(pool, {"epochs": epochs}) if epochs is not None else pool
    caption = (f"Backbone and neck configurations (λ_reg {loss_weight:g}, {head} head, "
               f"{epochs if epochs is not None else '?'} epochs). " + _data_sentence(used)
               + f" Runs: {_runs_summary(used)}{spread_sentence(frame)}{_delta_note(used)}. "
               f"Paper: {paper.PAPER_DATASET}, {paper.TABLE1_EPOCHS} epochs (original row: the official "
               "ActionFormer result).")
    if complexity:
        caption += _complexity_sentence(seq_len)
    caption += significance_sentence(frame, significance) + machine_sentence(used)
    return StudyTable("table1_configurations", "Table I", frame.drop(columns=["_paths"]), caption,
                      display=display, notes=notes + extra_notes)


def _rows(pool: pd.DataFrame, specs: Sequence[RowSpec], metrics: Sequence[str], complexity: bool,
          seq_len: int) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    records = []
    with_diff = _same_data_as_paper(pool)
    for key, label, filters, ref in specs:
        rows = _match(pool, filters)
        row: dict[str, Any] = {"key": key, "configuration": label, **{k: v for k, v in filters.items()}}
        row.update(_stats(rows, metrics))
        _add_paper(row, metrics, ref, with_diff)
        if rows.empty:
            notes.append(f"No finished run for {label}.")
        if complexity:
            values, problem = _complexity_for(rows, seq_len) if not rows.empty else ({}, None)
            row.update({"params_M": values.get("params_M", row["params"] / 1e6 if not math.isnan(row["params"])
                                               else math.nan),
                        "GFLOPs": values.get("GFLOPs", math.nan), "GMACs": values.get("GMACs", math.nan)})
            if problem:
                notes.append(problem)
        records.append(row)
    frame = pd.DataFrame(records)
    return frame.drop(columns=["params"]), notes


def table_heads(runs: pd.DataFrame, *, backbone: str = "sgp", neck: str = "identity",
                heads: Sequence[str] = ("actionformer", "trident", "decoupled"),
                data: Mapping[str, Any] | str | None = None, epochs: int | None = None, loss_weight: float = 1.0,
                complexity: bool = True, seq_len: int = 2304,
                significance: SeedVideoTest | None = None) -> StudyTable:
    """Head ablation (issue 7's Table IV) on one backbone / neck pair, with Table I's columns.

    The paper has no head ablation; on the ActionFormer-head row it shows its Table I number
    for the same backbone / neck pair (configuration E for SGP + identity). ``significance``:
    as in :func:`table_configurations`, with ``reference='actionformer'``.
    """
    pair_key = next((k for k, c in PAPER_CONFIGURATIONS.items()
                     if c["backbone_type"] == backbone and c["fpn_type"] == neck), None)
    specs: list[RowSpec] = [
        (h, f"{h} head", {"backbone": backbone, "neck": neck, "head": h},
         paper.TABLE1.get(pair_key) if (h == _DEFAULT_HEAD and pair_key) else None) for h in heads]
    pool, notes = select_data(_finished(runs), data)
    pool = _match(pool, {"loss_weight": float(loss_weight), "backbone": backbone, "neck": neck})
    epochs = epochs if epochs is not None else _choose_epochs(pool, ["head"])
    frame, display, extra_notes = _configuration_table(pool, specs, epochs, complexity, seq_len, significance)
    used = _match(pool, {"epochs": epochs}) if epochs is not None else pool
    caption = (f"Head ablation on the {_BACKBONE_NAMES.get(backbone, backbone)} backbone with the "
               f"{_NECK_NAMES.get(neck, neck)} (λ_reg {loss_weight:g}, {epochs if epochs is not None else '?'} "
               "epochs). " + _data_sentence(used) + f" Runs: {_runs_summary(used)}{spread_sentence(frame)}"
               f"{_delta_note(used)}. The paper has no head ablation: its {paper.PAPER_DATASET} Table I "
               f"number for this pair{f' ({pair_key})' if pair_key else ''} is shown on the actionformer row.")
    if complexity:
        caption += _complexity_sentence(seq_len)
    caption += significance_sentence(frame, significance) + machine_sentence(used)
    return StudyTable("table4_heads", "Table IV", frame.drop(columns=["_paths"]), caption,
                      display=display, notes=notes + extra_notes)


def table_epochs(runs: pd.DataFrame, epoch_evals: pd.DataFrame | None = None, *, source: str = "auto",
                 configuration: str = "original", data: Mapping[str, Any] | str | None = None,
                 epochs: Sequence[int] | None = None, loss_weight: float = 1.0) -> StudyTable:
    """Table II: mAP against training epochs for one configuration.

    Args:
        source: 'runs' (separate runs trained for each number of epochs), 'epoch_evals' (runs
            evaluated at listed epochs during one schedule; ``epoch_evals`` from
            :func:`tal_lab.runs.load_epoch_evals`), or 'auto' (separate runs when the store
            has two or more lengths, else evaluations within one run when given).
        epochs: rows to show; default the paper's epochs and every epoch with results.
    """
    if source not in ("auto", "runs", "epoch_evals"):
        raise ValueError(f"source must be 'auto', 'runs' or 'epoch_evals', got {source!r}")
    conf = PAPER_CONFIGURATIONS[configuration]
    filters = {"backbone": conf["backbone_type"], "neck": conf["fpn_type"], "head": _DEFAULT_HEAD,
               "loss_weight": float(loss_weight)}
    pool, notes = select_data(_finished(runs), data)
    pool = _match(pool, filters)
    evals = pd.DataFrame()
    if epoch_evals is not None and not epoch_evals.empty:
        evals, _ = select_data(_finished(epoch_evals), data)
        evals = _match(evals, filters)
    if source == "auto":
        source = "runs" if pool["epochs"].nunique() >= 2 or evals.empty else "epoch_evals"
    if source == "epoch_evals":
        if evals.empty:
            raise ValueError("Table II from epoch evaluations needs load_epoch_evals() rows for "
                             f"configuration {configuration!r}; none were given or none match")
        # one schedule: the run length with most evaluated epochs (cosine schedules differ by length)
        schedule = int(evals.groupby("epochs")["epoch"].nunique().sort_index().idxmax())
        evals = evals[evals["epochs"] == schedule]
        groups, used = {int(e): g for e, g in evals.groupby("epoch")}, evals
        how = (f"from runs of {schedule} epochs evaluated at the listed epochs during training (epochs "
               "trained, warm-up included; an intermediate epoch of a cosine schedule is not a run trained "
               "for that many epochs)")
    else:
        groups, used = {int(e): g for e, g in pool.groupby("epochs")}, pool
        how = ("from separate runs trained for each number of epochs (opt.epochs; the warm-up epochs "
               "come on top, as in ActionFormer)")
    wanted = sorted(set(epochs) if epochs is not None else set(paper.TABLE2) | set(groups))
    records = []
    with_diff = _same_data_as_paper(used)
    for ep in wanted:
        row: dict[str, Any] = {"epoch": ep, **_stats(groups.get(ep, used.iloc[:0]), paper.MAP_COLUMNS)}
        _add_paper(row, paper.MAP_COLUMNS, paper.TABLE2.get(ep), with_diff)
        row["paper note"] = paper.TABLE2_NOTES.get(ep, "")
        records.append(row)
    frame = pd.DataFrame(records).drop(columns=["_paths", "sec_per_epoch", "params"])
    display = {"Epoch": frame["epoch"].astype(str).tolist(), "n": frame["n_seeds"].astype(str).tolist()}
    display.update(_display_metrics(frame, paper.MAP_COLUMNS, paper_cols=True))
    display["Paper note"] = frame["paper note"].tolist()
    missing = [str(e) for e, n in zip(frame["epoch"], frame["n_seeds"]) if n == 0]
    if missing:
        notes.append(f"No results at epoch(s) {', '.join(missing)}.")
    caption = (f"Effect of training epochs on the {paper.TABLE1_LABELS.get(configuration, configuration)} "
               f"configuration (λ_reg {loss_weight:g}), {how}. " + _data_sentence(used)
               + f" Runs: {_runs_summary(used)}{spread_sentence(frame)}{_delta_note(used)}. "
               f"Paper: {paper.PAPER_DATASET} (50 epochs: the official ActionFormer result)." + machine_sentence(used))
    return StudyTable("table2_epochs", "Table II", frame, caption, display=pd.DataFrame(display), notes=notes)


def table_loss_weight(runs: pd.DataFrame, *, configuration: str = "original",
                      loss_weights: Sequence[float] = tuple(paper.TABLE3), data: Mapping[str, Any] | str | None = None,
                      epochs: int | None = None) -> StudyTable:
    """Table III: λ_reg ablation (mAP@0.5, mAP@0.7, average) of one configuration.

    Rows: ``loss_weights`` and any other λ_reg with runs. ``epochs``: default the schedule
    covering most λ_reg values.
    """
    conf = PAPER_CONFIGURATIONS[configuration]
    pool, notes = select_data(_finished(runs), data)
    pool = _match(pool, {"backbone": conf["backbone_type"], "neck": conf["fpn_type"], "head": _DEFAULT_HEAD})
    epochs = epochs if epochs is not None else _choose_epochs(pool, ["loss_weight"])
    if epochs is not None:
        pool = _match(pool, {"epochs": epochs})
    found = sorted(float(w) for w in pool["loss_weight"].dropna().unique()) if not pool.empty else []
    wanted = sorted({float(w) for w in loss_weights} | set(found))
    metrics = paper.TABLE3_COLUMNS
    records = []
    with_diff = _same_data_as_paper(pool)
    for w in wanted:
        rows = _match(pool, {"loss_weight": w}) if not pool.empty else pool
        row: dict[str, Any] = {"loss_weight": w, **_stats(rows, metrics)}
        _add_paper(row, metrics, paper.TABLE3.get(w), with_diff)
        if rows.empty:
            notes.append(f"No finished run with λ_reg {w:g}.")
        records.append(row)
    frame = pd.DataFrame(records).drop(columns=["_paths", "sec_per_epoch", "params"])
    display = {"λ_reg": [f"{w:g}" for w in frame["loss_weight"]], "n": frame["n_seeds"].astype(str).tolist()}
    display.update(_display_metrics(frame, metrics, paper_cols=True))
    caption = (f"Loss weight λ_reg ablation of the {paper.TABLE1_LABELS.get(configuration, configuration)} "
               f"configuration ({epochs if epochs is not None else '?'} epochs): mAP at tIoU 0.5 and 0.7 and the "
               "average over 0.3:0.1:0.7. " + _data_sentence(pool)
               + f" Runs: {_runs_summary(pool)}{spread_sentence(frame)}{_delta_note(pool)}. "
               f"Paper: {paper.PAPER_DATASET}." + machine_sentence(pool))
    return StudyTable("table3_loss_weight", "Table III", frame, caption, display=pd.DataFrame(display), notes=notes)


def study_tables(runs: pd.DataFrame, epoch_evals: pd.DataFrame | None = None, **kwargs: Any) -> list[StudyTable]:
    """Tables I, II and III with default settings (``data`` and ``complexity`` passed through)."""
    data = kwargs.get("data")
    return [table_configurations(runs, **kwargs), table_epochs(runs, epoch_evals, data=data),
            table_loss_weight(runs, data=data)]
