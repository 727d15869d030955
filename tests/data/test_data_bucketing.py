"""Length-bucketed training batches: shuffled, sorted within pools, resumable, refused where it cannot work."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from tal_lab.config import ConfigError, apply_overrides, load_config
from tal_lab.data import build_data_loader, build_dataset, generate_synthetic, make_data_loader
from tal_lab.data.bucketing import LengthBucketBatchSampler
from tal_lab.engine.checkpoints.training_state import capture_rng_state, restore_rng_state
from tal_lab.engine.components import build_train_loader



def _thumos_training_lengths(shared_dir: Path) -> list[float]:
    """THUMOS14's 200 training (validation-subset) videos in I3D steps (stride 4), capped at 2304."""
    database = json.loads((shared_dir / "data" / "thumos14" / "thumos14.json").read_text())["database"]
    return [min(2304.0, v["duration"] * v["fps"] / 4) for v in database.values() if v["subset"].lower() == "validation"]


def _mean_padded(lengths: list[float], pool: int, epochs: int = 10) -> float:
    sampler = LengthBucketBatchSampler(lengths, 2, pool, torch.Generator().manual_seed(0))
    return statistics.mean(max(lengths[i] for i in batch) for _ in range(epochs) for batch in sampler)


def test_every_epoch_is_full_batches_of_distinct_videos_sorted_within_pools() -> None:
    lengths = [float(x) for x in torch.randperm(23, generator=torch.Generator().manual_seed(1)).tolist()]
    sampler = LengthBucketBatchSampler(lengths, 3, 2, torch.Generator().manual_seed(2))
    epochs = [list(sampler) for _ in range(3)]
    for batches in epochs:
        flat = [i for b in batches for i in b]
        assert len(batches) == len(sampler) == 7 and all(len(b) == 3 for b in batches)
        assert len(set(flat)) == 21  # 2 videos dropped, as drop_last drops a partial batch
        assert all(lengths[b[0]] <= lengths[b[1]] <= lengths[b[2]] for b in batches)
    assert epochs[0] != epochs[1] != epochs[2]  # a new shuffle every epoch


@pytest.mark.needs_shared
def test_pools_cut_thumos14_padding_toward_a_full_sort(shared_dir: Path) -> None:
    lengths = _thumos_training_lengths(shared_dir)
    assert len(lengths) == 200
    shuffled, pool8, everything = (_mean_padded(lengths, p) for p in (1, 8, len(lengths)))
    # batch 2: shuffled pairs pad to about 1,600 steps, pools of 8 batches to about 1,280,
    # one sorted epoch to about 1,210
    assert 1550 < shuffled < 1680 and 1230 < pool8 < 1330 and 1180 < everything < pool8


def test_the_same_generator_state_gives_the_same_batches_so_a_checkpoint_resumes_them(tmp_path: Path) -> None:
    cfg = apply_overrides(load_config(generate_synthetic(tmp_path, "tiny", seed=1)), ["loader.length_buckets=2"])
    loader = build_data_loader(cfg, "train", num_workers=0)
    assert isinstance(loader.batch_sampler, LengthBucketBatchSampler)
    assert loader.batch_sampler.generator is loader.generator  # what capture_rng_state saves
    list(loader)  # epoch 1
    state = capture_rng_state(loader)
    epoch2 = [[v["video_id"] for v in batch] for batch in loader]
    resumed = build_data_loader(cfg, "train", num_workers=0)
    restore_rng_state(state, resumed)
    assert [[v["video_id"] for v in batch] for batch in resumed] == epoch2


def test_item_lengths_follow_durations_and_sort_the_batches(tmp_path: Path) -> None:
    cfg = load_config(generate_synthetic(tmp_path, "tiny", seed=1))
    dataset = build_dataset(cfg, "train")
    estimated = dataset.item_lengths()
    whole = build_dataset(cfg, "train", False)  # the same videos, not cropped
    actual = [min(whole[i]["feats"].shape[1], cfg["dataset"]["max_seq_len"]) for i in range(len(whole))]
    assert all(abs(e - a) <= 1 for e, a in zip(estimated, actual)), (estimated, actual)
    loader = make_data_loader(dataset, True, 2, 0, seed=3, length_buckets=len(dataset) // 2)
    length_of = {v.video_id: length for v, length in zip(dataset.videos, estimated)}
    for batch in loader:
        assert length_of[batch[0]["video_id"]] <= length_of[batch[1]["video_id"]]


def test_bad_lengths_and_unsupported_loaders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="video 1 has length nan"):
        LengthBucketBatchSampler([1.0, float("nan")], 1, 1, torch.Generator())
    with pytest.raises(ValueError, match="2 videos are fewer than one batch of 3"):
        LengthBucketBatchSampler([1.0, 2.0], 3, 1, torch.Generator())
    with pytest.raises(ValueError, match="has no item_lengths"):
        make_data_loader(list(range(8)), True, 2, 0, seed=0, length_buckets=2)  # type: ignore[arg-type]
    cfg: dict[str, Any] = load_config(generate_synthetic(tmp_path, "tiny", seed=1))
    with pytest.raises(ConfigError, match="config key 'loader.length_buckets': must be 0"):
        apply_overrides(cfg, ["loader.length_buckets=-1"])
    bucketed = apply_overrides(cfg, ["loader.length_buckets=4"])
    with pytest.raises(ValueError, match="loader.length_buckets 4 is for one process; with 2 ranks"):
        build_train_loader(build_dataset(bucketed, "train"), bucketed, 2, seed=0, rank=0, world_size=2)
