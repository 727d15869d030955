"""Evaluation: mAP at tIoU thresholds (ActionFormer / ActivityNet protocol), the matching that
DETAD-style error analysis reads, paired bootstrap and significance, and the null baselines.

The numbers are those of ActionFormer's evaluator (``libs/utils/metrics.py``, ``ANETdetection``,
commit 61ea7eb), vectorised; the rules it leaves to chance are fixed in docs/evaluation.md.
One job per module, lowest first:

* :mod:`~tal_lab.evaluation.io`: annotation / prediction files <-> frames;
* :mod:`~tal_lab.evaluation.encoding`: frames validated and encoded as integer codes;
* :mod:`~tal_lab.evaluation.matching`: greedy matching at every threshold (:class:`Matching`);
* :mod:`~tal_lab.evaluation.average_precision`, :mod:`~tal_lab.evaluation.recall`: AP, Recall@kx,
  recall at k;
* :mod:`~tal_lab.evaluation.mean_ap`: :func:`mean_average_precision` and its :class:`MAPResult`;
* :mod:`~tal_lab.evaluation.label_space`: ActionFormer's relabelling, class-agnostic scoring;
* :mod:`~tal_lab.evaluation.bootstrap`, :mod:`~tal_lab.evaluation.significance`: uncertainty;
* :mod:`~tal_lab.evaluation.baselines`: chance-level predictions.
"""

from tal_lab.evaluation.average_precision import average_precision_per_class, interpolated_average_precision
from tal_lab.evaluation.baselines import (
    LabelPrior,
    detection_counts,
    expected_matches,
    prior_matched_predictions,
    relocated_predictions,
    uniform_random_predictions,
)
from tal_lab.evaluation.bootstrap import (
    BootstrapResult,
    PairedBootstrapResult,
    bootstrap_map,
    paired_bootstrap,
    resampled_map,
    video_weights,
)
from tal_lab.evaluation.encoding import UNKNOWN_VIDEOS, Segments, UnknownVideos, encode_inputs
from tal_lab.evaluation.io import (
    GT_COLUMNS,
    PRED_COLUMNS,
    detections_to_frame,
    read_class_names,
    read_ground_truth_json,
    read_predictions,
    read_video_info_json,
)
from tal_lab.evaluation.label_space import OfficialLabels, class_agnostic, official_label_space
from tal_lab.evaluation.matching import (
    ACTIVITYNET_TIOU_THRESHOLDS,
    THUMOS14_TIOU_THRESHOLDS,
    Matching,
    candidate_pairs,
    check_tiou_thresholds,
    match_predictions,
    rank_order,
)
from tal_lab.evaluation.mean_ap import MAPResult, mean_average_precision
from tal_lab.evaluation.recall import RECALL_AT_K, RECALL_TOP_KX, recall_at_k, topkx_recall_per_class
from tal_lab.evaluation.significance import (
    MIN_SEEDS,
    SIGNIFICANCE_COLUMNS,
    SeedVideoResult,
    SeedVideoTest,
    combine_seed_and_video,
    paired_significance,
    run_detections,
    run_maps,
    seed_video_test,
    student_t_quantile,
    student_t_two_sided_p,
)

__all__ = [
    # files and frames
    "GT_COLUMNS", "PRED_COLUMNS", "read_ground_truth_json", "read_video_info_json", "read_class_names",
    "read_predictions", "detections_to_frame",
    # matching
    "THUMOS14_TIOU_THRESHOLDS", "ACTIVITYNET_TIOU_THRESHOLDS", "Segments", "UNKNOWN_VIDEOS", "UnknownVideos",
    "encode_inputs",
    "Matching", "candidate_pairs", "check_tiou_thresholds", "match_predictions", "rank_order",
    # AP, recall, mAP
    "interpolated_average_precision", "average_precision_per_class", "RECALL_TOP_KX", "RECALL_AT_K",
    "topkx_recall_per_class", "recall_at_k", "MAPResult", "mean_average_precision",
    # label spaces
    "OfficialLabels", "official_label_space", "class_agnostic",
    # uncertainty
    "video_weights", "resampled_map", "bootstrap_map", "paired_bootstrap", "BootstrapResult",
    "PairedBootstrapResult", "paired_significance", "run_detections",
    "MIN_SEEDS", "SIGNIFICANCE_COLUMNS", "SeedVideoResult", "SeedVideoTest", "combine_seed_and_video", "run_maps",
    "seed_video_test", "student_t_two_sided_p", "student_t_quantile",
    # chance-level baselines
    "LabelPrior", "expected_matches", "prior_matched_predictions", "uniform_random_predictions",
    "relocated_predictions", "detection_counts",
]
