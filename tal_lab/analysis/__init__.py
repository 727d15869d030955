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
* :mod:`~tal_lab.analysis.study_table`: a table with captions and its CSV / Markdown / LaTeX export
  (Tables I-IV themselves are assembled in :mod:`tal_lab.study.tables`).
* :mod:`~tal_lab.analysis.run_views`: a run's curves, per-class AP and the interactive explorer.
* :mod:`~tal_lab.analysis.errors`: error diagnosis (imported from its module).
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
from tal_lab.analysis.study_table import StudyTable
from tal_lab.analysis.timelines import TimelineMatch, match_detections, plot_timelines

__all__ = [
    "Complexity", "detector_complexity", "model_complexity",
    "plot_cosine_to_mean", "plot_diversity_by_layer", "plot_diversity_by_level", "plot_diversity_over_epochs",
    "plot_diversity_overview",
    "DiversityResult", "capture_features", "cosine_to_mean", "diversity_metrics", "effective_rank",
    "extract_features", "mean_pairwise_cosine", "probe_diversity", "rank_collapse_ratio",
    "load_run_detector", "probe_run", "run_checkpoints",
    "StudyTable",
    "TimelineMatch", "match_detections", "plot_timelines",
]
