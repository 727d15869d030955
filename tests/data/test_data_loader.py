"""DataLoader construction (seeded, persistent workers, list batches) and padding to the model input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tal_lab.config import apply_overrides, load_config
from tal_lab.data import build_data_loader, build_dataset, collate_videos, generate_synthetic, make_data_loader, pad_videos
from tal_lab.data.batching import VIDEO_KEYS


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tiny_loader")
    return load_config(generate_synthetic(out, "tiny", seed=1))


def _epoch(loader: Any) -> list[tuple[str, tuple[int, ...], list[list[float]]]]:
    return [(v["video_id"], tuple(v["feats"].shape), v["segments"].tolist()) for batch in loader for v in batch]


def test_training_batches_are_lists_of_video_dicts(cfg: dict[str, Any]) -> None:
    loader = build_data_loader(cfg, "train", num_workers=0)
    batches = list(loader)
    assert len(batches) == 6 // 2 and all(isinstance(b, list) and len(b) == 2 for b in batches)
    for video in batches[0]:
        assert set(video) == set(VIDEO_KEYS) and video["feats"].dtype == torch.float32
        assert video["feats"].shape[1] <= cfg["dataset"]["max_seq_len"]


def test_seeded_workers_repeat_exactly_and_seeds_differ(cfg: dict[str, Any]) -> None:
    dataset = build_dataset(cfg, "train")
    first = make_data_loader(dataset, True, 2, num_workers=1, seed=7)
    assert first.persistent_workers
    epochs = [_epoch(first), _epoch(first)]
    again = _epoch(make_data_loader(build_dataset(cfg, "train"), True, 2, num_workers=1, seed=7))
    other = _epoch(make_data_loader(build_dataset(cfg, "train"), True, 2, num_workers=1, seed=8))
    assert again == epochs[0]
    assert other != epochs[0]
    assert epochs[1] != epochs[0]  # a new shuffle and new crops every epoch


def test_evaluation_loader_keeps_order_and_whole_videos(cfg: dict[str, Any]) -> None:
    loader = build_data_loader(cfg, "val", num_workers=0)
    ids = [batch[0]["video_id"] for batch in loader]
    assert loader.batch_size == 1 and ids == sorted(ids) and len(ids) == 4


def test_training_loader_needs_one_full_batch(cfg: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="fewer than loader.batch_size 8"):
        make_data_loader(build_dataset(cfg, "train"), True, 8, 0, 0)


def test_pad_videos_masks_and_lengths(cfg: dict[str, Any]) -> None:
    videos = [build_dataset(cfg, "val")[i] for i in range(2)]
    reference = apply_overrides(cfg, ["model.eval_padding=reference", "model.train_padding=reference"])["model"]
    feats, masks = pad_videos(videos, reference, training=False)
    # 238 and 260 steps, both within max_seq_len 576: reference inference pads them to it
    assert [v["feats"].shape[1] for v in videos] == [238, 260] and reference["max_seq_len"] == 576
    assert feats.shape == (2, 16, 576) and masks.shape == (2, 1, 576) and masks.dtype == torch.bool
    for row, video in enumerate(videos):
        t = video["feats"].shape[1]
        assert masks[row, 0, :t].all() and not masks[row, 0, t:].any()
        assert torch.equal(feats[row, :, :t], video["feats"]) and not feats[row, :, t:].any()
    train_feats, _ = pad_videos(collate_videos([build_dataset(cfg, "train")[0]]), reference, training=True)
    assert train_feats.shape[-1] == reference["max_seq_len"]
    # the default 'auto' is 'minimal' for the convTransformer: 260 -> 288 (top stride 32) + one step of 32
    assert cfg["model"]["backbone_type"] == "convTransformer" and cfg["model"]["eval_padding"] == "auto"
    feats, masks = pad_videos(videos, cfg["model"], training=False)
    assert feats.shape == (2, 16, 320) and masks.sum().item() == 238 + 260


def test_collate_rejects_non_video_items() -> None:
    with pytest.raises(ValueError, match=r"batch item 0 is not a video dict: missing keys \['segments'"):
        collate_videos([{"video_id": "a", "feats": torch.zeros(2, 3)}])
