"""Analysis helpers used by the notebooks: timelines, feature diversity, complexity and tables.

Everything a notebook plots or tabulates is a function here (tested), so notebooks hold no logic.
See docs/analysis.md for a tour.

* :mod:`~tal_lab.analysis.timelines`: predictions vs ground truth per video (``match_detections``,
  ``plot_timelines``).
* :mod:`~tal_lab.analysis.features` / :mod:`~tal_lab.analysis.feature_plots` /
  :mod:`~tal_lab.analysis.run_models`: hooks on a trained detector, diversity metrics (mean
  pairwise cosine, effective rank, rank-collapse ratio, cosine to the temporal mean) and their
  figures; ``probe_run`` probes a run's checkpoints.
* :mod:`~tal_lab.analysis.complexity`: parameters and GFLOPs per video, cached per config.
* :mod:`~tal_lab.analysis.tables` / :mod:`~tal_lab.analysis.study_table` /
  :mod:`~tal_lab.analysis.paper_results` / :mod:`~tal_lab.analysis.significance`: Tables I-IV
  from the run store beside the paper's numbers, exported to CSV / Markdown / LaTeX.
* :mod:`~tal_lab.analysis.errors` (error diagnosis) and :mod:`~tal_lab.analysis.bootstrap`
  (bootstrap intervals of mAP) are imported from their modules.
"""

from tal_lab.analysis.complexity import Complexity, detector_complexity, model_complexity
from tal_lab.analysis.feature_plots import (
    plot_cosine_to_mean,
    plot_diversity_by_layer,
    plot_diversity_by_level,
    plot_diversity_over_epochs,
    plot_diversity_overview,
)
from tal_lab.analysis.features import (
    DiversityResult,
    capture_features,
    cosine_to_mean,
    diversity_metrics,
    effective_rank,
    extract_features,
    mean_pairwise_cosine,
    probe_diversity,
    rank_collapse_ratio,
)
from tal_lab.analysis.run_models import load_run_detector, probe_run, run_checkpoints
from tal_lab.analysis.significance import paired_significance
from tal_lab.analysis.study_table import StudyTable
from tal_lab.analysis.tables import (
    study_tables,
    table_configurations,
    table_epochs,
    table_heads,
    table_loss_weight,
)
from tal_lab.analysis.timelines import TimelineMatch, match_detections, plot_timelines

__all__ = [
    "Complexity", "detector_complexity", "model_complexity",
    "plot_cosine_to_mean", "plot_diversity_by_layer", "plot_diversity_by_level", "plot_diversity_over_epochs",
    "plot_diversity_overview",
    "DiversityResult", "capture_features", "cosine_to_mean", "diversity_metrics", "effective_rank",
    "extract_features", "mean_pairwise_cosine", "probe_diversity", "rank_collapse_ratio",
    "load_run_detector", "probe_run", "run_checkpoints",
    "paired_significance",
    "StudyTable",
    "study_tables", "table_configurations", "table_epochs", "table_heads", "table_loss_weight",
    "TimelineMatch", "match_detections", "plot_timelines",
]
