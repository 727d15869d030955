"""The one-command study: every run Tables I-IV need, through papermill, then tables, figures, reports.

``tal-lab study``: (1) **plan** the runs each table needs at a
preset, deduplicated (:func:`build_plan`; the original at lambda_reg 1 serves Tables I, II and
III); (2) **train** each through ``notebooks/run_ablation.ipynb`` with papermill, ``jobs`` kernels
at a time, skipping runs already finished in the store and resuming unfinished ones (a killed
study continues where it stopped; a failed run is reported and the study goes on); Table IV's
runs join once Table I's are done (the best pair); (3) **analyse** with the ``tables``,
``timelines``, ``feature_diversity`` and ``explore`` notebooks; (4) **export** HTML, figures,
tables and the index page (:mod:`tal_lab.study.reports`). Table II comes by default from one run
evaluated at the listed epochs (``engine.eval_epochs``), or from separate runs. Each run is
repeated for ``seeds`` training seeds on the same data. docs/notebooks.md has the details.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from tal_lab.config import DEFAULTS, PAPER_CONFIGURATIONS, load_config
from tal_lab.data.synthetic_spec import get_preset
from tal_lab.study.paper_results import TABLE1_EPOCHS
from tal_lab.study.params import (
    BACKBONE_CHOICES, DATASETS, STUDY_PRESETS, STUDY_TO_SYNTHETIC_PRESET, backbone_parameter, base_config, check_choice,
    synthetic_folder)

__all__ = [
    "TABLES", "LOSS_WEIGHTS", "PAPER_TABLE2_EPOCHS", "TABLE4_HEADS", "TABLE1_CONFIGURATIONS", "ANALYSIS_NOTEBOOKS",
    "RunSpec", "StudyPlan", "configuration_types", "scaled_epochs", "seed_list", "build_plan", "table4_specs",
]

TABLES: tuple[str, ...] = ("I", "II", "III", "IV")
# Paper Table III's lambda_reg values and Table II's epochs (50: the official ActionFormer run).
LOSS_WEIGHTS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
PAPER_TABLE2_EPOCHS: tuple[int, ...] = (1, 4, 8, 15, 25, 50)
TABLE4_HEADS: tuple[str, ...] = ("actionformer", "trident", "decoupled")
# Table I's rows as (backbone parameter, neck): the paper's six and issue 7's max-pool row.
TABLE1_CONFIGURATIONS: dict[str, tuple[str, str]] = {
    **{name: (backbone_parameter(c["backbone_type"]), c["fpn_type"]) for name, c in PAPER_CONFIGURATIONS.items()},
    "maxpool": ("maxpool", "identity"),
}
# Notebooks run after training, in order; each writes into the reports folder.
ANALYSIS_NOTEBOOKS: tuple[str, ...] = ("tables", "timelines", "feature_diversity", "explore")


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study (notebook parameter names; ``uses`` says which table cells).

    Two specs with the same :attr:`key` are the same run; merging unites their ``uses`` and
    ``eval_epochs``.
    """

    backbone: str
    neck: str
    head: str
    epochs: int
    loss_weight: float
    seed: int
    eval_epochs: tuple[int, ...] = ()
    uses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, int, float, int]:
        return (self.backbone, self.neck, self.head, self.epochs, float(self.loss_weight), self.seed)

    def merged(self, other: "RunSpec") -> "RunSpec":
        return replace(self, eval_epochs=tuple(sorted(set(self.eval_epochs) | set(other.eval_epochs))),
                       uses=tuple(dict.fromkeys(self.uses + other.uses)))

    def run_name(self, data_tag: str) -> str:
        """The run store folder name, as ``tal_lab.runs.default_run_name`` forms it."""
        return (f"{data_tag}-{BACKBONE_CHOICES[self.backbone]}-{self.neck}-{self.head}-lw{float(self.loss_weight):g}"
                f"-e{self.epochs}-s{self.seed}")


@dataclass
class StudyPlan:
    """Everything the study will run, and where."""

    preset: str
    dataset: str
    data_root: str
    config_file: str
    data_tag: str
    table1_epochs: int
    table2_epochs: tuple[int, ...]
    table2_runs: str
    seeds: tuple[int, ...]
    tables: tuple[str, ...]
    configurations: tuple[str, ...]
    table4_pair: str
    table_seeds: tuple[tuple[str, int], ...] = ()  # (table, count): fewer seeds than ``seeds`` for it
    runs: list[RunSpec] = field(default_factory=list)

    def seeds_for(self, table: str) -> tuple[int, ...]:
        """The training seeds of ``table``'s runs: the first of ``seeds`` as many as it asks."""
        return self.seeds[:dict(self.table_seeds).get(table, len(self.seeds))]

    def run_names(self) -> list[str]:
        return [spec.run_name(self.data_tag) for spec in self.runs]

    def describe(self) -> str:
        """The plan as text (what ``--dry-run`` prints)."""
        fewer = "".join(f"; Table {t}: {n} seed(s)" for t, n in self.table_seeds)
        lines = [f"study plan: dataset {self.dataset} ({self.data_tag}), preset {self.preset}, "
                 f"{len(self.seeds)} seed(s) {list(self.seeds)}{fewer}",
                 f"  Table I epochs: {self.table1_epochs}; Table II epochs: {list(self.table2_epochs)} "
                 f"({'one run evaluated at each' if self.table2_runs == 'one' else 'separate runs'}); "
                 f"tables {', '.join(self.tables)}",
                 f"  {len(self.runs)} run(s) after removing duplicates:"]
        for spec in self.runs:
            extra = f", evaluated also at epochs {list(spec.eval_epochs)}" if spec.eval_epochs else ""
            lines.append(f"    {spec.run_name(self.data_tag)}  [{'; '.join(spec.uses)}]{extra}")
        if "IV" in self.tables:
            pair = ("the best backbone / neck pair of Table I (chosen after its runs)" if self.table4_pair == "auto"
                    else f"configuration {self.table4_pair}")
            lines.append(f"  Table IV: heads {list(TABLE4_HEADS)} x {len(self.seeds)} seed(s) on {pair}")
        return "\n".join(lines)


def configuration_types(name: str) -> tuple[str, str]:
    """(backbone_type, fpn_type) of a Table I configuration ('original', 'A'-'E', 'maxpool')."""
    if name not in TABLE1_CONFIGURATIONS:
        raise ValueError(f"unknown configuration {name!r}; choose from {list(TABLE1_CONFIGURATIONS)}")
    backbone, neck = TABLE1_CONFIGURATIONS[name]
    return BACKBONE_CHOICES[backbone], neck


def scaled_epochs(epochs: int, reference: Sequence[int] = PAPER_TABLE2_EPOCHS) -> tuple[int, ...]:
    """The paper's Table II epoch list rescaled so that its last entry is ``epochs``."""
    top = reference[-1]
    return tuple(sorted({max(1, round(e * epochs / top)) for e in reference}))


def seed_list(count: int, base: int | None = None) -> tuple[int, ...]:
    """``count`` consecutive training seeds from ``base`` (default ActionFormer's seed)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"seeds must be a positive integer, got {count!r}")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 0):
        raise ValueError(f"first_seed must be a non-negative integer, got {base!r}")
    start = int(DEFAULTS["init_rand_seed"]) if base is None else int(base)
    return tuple(start + i for i in range(count))


def _add(specs: dict[tuple, RunSpec], spec: RunSpec) -> None:
    specs[spec.key] = specs[spec.key].merged(spec) if spec.key in specs else spec


def build_plan(
    preset: str = "quick",
    dataset: str = "synthetic",
    data_root: str = "",
    config_file: str = "",
    seeds: int = 1,
    first_seed: int | None = None,
    tables: Sequence[str] = TABLES,
    configurations: Sequence[str] | None = None,
    table2_runs: str = "one",
    table4_pair: str = "auto",
    epochs: int | None = None,
    base_cfg: Mapping[str, Any] | None = None,
    table_seeds: Mapping[str, int] | None = None,
) -> StudyPlan:
    """The deduplicated runs of the study (Table IV's are added once Table I is done, unless
    ``table4_pair`` names a configuration).

    Args:
        base_cfg: the dataset's base config (default: built from dataset / data_root / preset,
            which generates the synthetic data if needed); it gives the preset's epochs.
        epochs: Table I / III epochs instead of the preset's.
        first_seed: the first of the ``seeds`` consecutive training seeds (default
            ActionFormer's 1234567891); ``seeds=3, first_seed=1234567894`` replicates a
            3-seed study on three new seeds.
        configurations: Table I rows to run (default all: original, A-E, maxpool).
        table_seeds: tables that take only the first n of the seeds, e.g. ``{"II": 1, "III": 1}``
            with ``seeds=3``: Tables I / IV get marks from 3 seeds, II / III one run per cell.

    Raises:
        ValueError: unknown preset, dataset, table, configuration or option.
    """
    configurations = _checked_options(preset, dataset, table2_runs, tables, configurations, table4_pair)
    if base_cfg is None and dataset == "synthetic" and not config_file:
        # The plan needs only the preset's epochs: no data is generated for a dry run.
        data_root = str(synthetic_folder(preset, data_root))
        data_tag = f"synthetic-{STUDY_TO_SYNTHETIC_PRESET[preset]}"
        preset_epochs = _synthetic_epochs(preset, Path(data_root))
    else:
        cfg = base_cfg if base_cfg is not None else base_config(dataset, data_root, preset, config_file)
        data_tag = (f"synthetic-{cfg['dataset']['synthetic']['preset']}" if cfg["dataset_name"] == "synthetic"
                    else cfg["dataset_name"])
        preset_epochs = int(cfg["opt"]["epochs"])
    t1_epochs = int(epochs) if epochs is not None else preset_epochs
    if preset == "paper" and dataset in ("synthetic", "thumos14") and epochs is None:
        t2_epochs = PAPER_TABLE2_EPOCHS
    else:
        t2_epochs = scaled_epochs(t1_epochs)
    plan = StudyPlan(preset=preset, dataset=dataset, data_root=str(data_root), config_file=config_file,
                     data_tag=data_tag, table1_epochs=t1_epochs, table2_epochs=tuple(t2_epochs),
                     table2_runs=table2_runs, seeds=seed_list(seeds, first_seed), tables=tuple(tables),
                     configurations=configurations, table4_pair=table4_pair,
                     table_seeds=_checked_table_seeds(table_seeds, tables, seeds))
    specs: dict[tuple, RunSpec] = {}
    original = TABLE1_CONFIGURATIONS["original"]
    if "I" in tables:
        for seed in plan.seeds_for("I"):
            for name in configurations:
                backbone, neck = TABLE1_CONFIGURATIONS[name]
                _add(specs, RunSpec(backbone, neck, "actionformer", t1_epochs, 1.0, seed, uses=(f"I:{name}",)))
    if "II" in tables:
        for seed in plan.seeds_for("II"):
            if table2_runs == "one":  # every listed epoch is evaluated; the last evaluation is after warm-up
                _add(specs, RunSpec(*original, "actionformer", t2_epochs[-1], 1.0, seed, tuple(t2_epochs), ("II",)))
            else:
                for e in t2_epochs:
                    _add(specs, RunSpec(*original, "actionformer", e, 1.0, seed, uses=(f"II:{e}",)))
    if "III" in tables:
        for seed in plan.seeds_for("III"):
            for weight in LOSS_WEIGHTS:
                _add(specs, RunSpec(*original, "actionformer", t1_epochs, weight, seed, uses=(f"III:{weight:g}",)))
    if "IV" in tables and table4_pair != "auto":
        for seed in plan.seeds_for("IV"):
            for spec in table4_specs(plan, table4_pair, seed):
                _add(specs, spec)
    plan.runs = list(specs.values())
    return plan


def _checked_options(preset: str, dataset: str, table2_runs: str, tables: Sequence[str],
                     configurations: Sequence[str] | None, table4_pair: str) -> tuple[str, ...]:
    """The Table I rows to run, after every option of ``build_plan`` is checked."""
    check_choice("preset", preset, STUDY_PRESETS)
    check_choice("dataset", dataset, DATASETS)
    check_choice("table2_runs", table2_runs, ("one", "separate"))
    unknown = [t for t in tables if t not in TABLES]
    if unknown or not tables:
        raise ValueError(f"unknown table(s) {unknown or list(tables)}; choose from {list(TABLES)}")
    configurations = tuple(configurations or TABLE1_CONFIGURATIONS)
    unknown = [c for c in configurations if c not in TABLE1_CONFIGURATIONS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {list(TABLE1_CONFIGURATIONS)}")
    if table4_pair != "auto" and table4_pair not in TABLE1_CONFIGURATIONS:
        raise ValueError(f"table4_pair {table4_pair!r} is not 'auto' or one of {list(TABLE1_CONFIGURATIONS)}")
    return configurations


def _checked_table_seeds(table_seeds: Mapping[str, int] | None, tables: Sequence[str],
                         seeds: int) -> tuple[tuple[str, int], ...]:
    """``table_seeds`` as sorted pairs, each a study table with 1 to ``seeds`` seeds."""
    pairs = []
    for table, count in sorted((table_seeds or {}).items()):
        if table not in tables:
            raise ValueError(f"table_seeds names Table {table!r}, which the study does not build ({list(tables)})")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= seeds:
            raise ValueError(f"table_seeds[{table!r}] must be an integer from 1 to seeds ({seeds}), got {count!r}")
        pairs.append((table, count))
    return tuple(pairs)


def _synthetic_epochs(preset: str, folder: Path) -> int:
    """opt.epochs of the synthetic benchmark's config (generated or still to be generated)."""
    if (folder / "config.yaml").is_file():
        return int(load_config(folder / "config.yaml")["opt"]["epochs"])
    if preset == "paper":
        return TABLE1_EPOCHS
    return int(get_preset(STUDY_TO_SYNTHETIC_PRESET[preset]).opt["epochs"])


def table4_specs(plan: StudyPlan, pair: str, seed: int) -> list[RunSpec]:
    """Table IV's runs (one per head) on configuration ``pair`` for one seed."""
    backbone, neck = TABLE1_CONFIGURATIONS[pair]
    return [RunSpec(backbone, neck, head, plan.table1_epochs, 1.0, seed, uses=(f"IV:{head}@{pair}",))
            for head in TABLE4_HEADS]
