"""Evaluation: mAP at tIoU thresholds (ActionFormer / ActivityNet protocol), DETAD-style error
analysis inputs, paired bootstrap and significance, and the null baselines."""
