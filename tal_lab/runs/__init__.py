"""The run store: the on-disk layout of a training run and the readers that turn runs into tables."""

from tal_lab.runs.store import (DEFAULT_RUN_STORE, RUN_FILES, RUN_STATUSES, STANDARD_TIOUS, Run, dataset_identity,
                                default_run_name, find_run_dirs, load_epoch_evals, load_run, load_runs,
                                map_column, run_status)

__all__ = ["DEFAULT_RUN_STORE", "RUN_FILES", "RUN_STATUSES", "STANDARD_TIOUS", "Run", "dataset_identity",
           "default_run_name", "find_run_dirs", "load_epoch_evals", "load_run", "load_runs", "map_column",
           "run_status"]
