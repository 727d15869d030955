"""Device placement of the study's runs with fake device lists: which run goes where, and the
environment each kernel gets (no CUDA call anywhere)."""

from __future__ import annotations

import pytest

from tal_lab.study.placement import DeviceSlot, device_slots, parse_devices, place_runs
from tal_lab.study.runner import LaunchOptions, study_slots

RUNS = [f"run{i}" for i in range(5)]


def test_auto_takes_every_visible_gpu_else_the_cpu() -> None:
    assert parse_devices("auto", 4) == ("cuda:0", "cuda:1", "cuda:2", "cuda:3")
    assert parse_devices("auto", 0) == ("cpu",)
    assert parse_devices("cpu", 8) == ("cpu",)
    assert parse_devices("cuda:3, cuda:1", 4) == ("cuda:3", "cuda:1")
    assert parse_devices("cuda", 2) == ("cuda:0",)


@pytest.mark.parametrize("text, gpus, message", [
    ("cuda:4", 4, "cuda:4 asked for, but 4 CUDA device(s) are visible"),
    ("cuda:0,cuda:0", 2, "names a device twice"),
    ("gpu0", 2, "['gpu0'] is not a device"),
    ("", 2, "nothing is not a device"),
])
def test_bad_device_lists_are_errors_naming_them(text: str, gpus: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_devices(text, gpus)
    assert message in str(info.value)


def test_one_run_per_gpu_each_kernel_seeing_only_its_own() -> None:
    slots = device_slots(parse_devices("auto", 4), cpu_cores=16)
    placed = place_runs(RUNS, slots)
    assert [(name, slot.devices) for name, slot in placed] == [
        ("run0", ("cuda:0",)), ("run1", ("cuda:1",)), ("run2", ("cuda:2",)), ("run3", ("cuda:3",)),
        ("run4", ("cuda:0",))]
    env = placed[2][1].environment()
    assert env == {"CUDA_VISIBLE_DEVICES": "2", "OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    assert placed[2][1].notebook_device == "cuda"  # inside its kernel, cuda:0 is physical GPU 2
    assert placed[2][1].describe() == "cuda:2"


def test_runs_per_device_packs_slots_round_the_gpus_first() -> None:
    slots = device_slots(("cuda:0", "cuda:1"), cpu_cores=8, runs_per_device=3)
    assert [s.devices for s in slots] == [("cuda:0",), ("cuda:1",)] * 3
    assert [s.index for s in slots] == list(range(6)) and {s.threads for s in slots} == {1}
    # --jobs below the slot count still spreads over both GPUs
    assert [s.devices for s in device_slots(("cuda:0", "cuda:1"), 8, runs_per_device=3, jobs=2)] == [
        ("cuda:0",), ("cuda:1",)]
    with pytest.raises(ValueError, match="--jobs 7 is more than the 6 slot"):
        device_slots(("cuda:0", "cuda:1"), 8, runs_per_device=3, jobs=7)


def test_gpus_per_run_groups_devices_for_torchrun() -> None:
    slots = device_slots(parse_devices("auto", 4), cpu_cores=16, gpus_per_run=2)
    assert [s.devices for s in slots] == [("cuda:0", "cuda:1"), ("cuda:2", "cuda:3")]
    assert slots[1].ranks == 2 and slots[1].threads == 4 and slots[1].gpu_ids == (2, 3)
    assert slots[1].environment()["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert slots[1].describe() == "cuda:2+cuda:3 (2 ranks)"
    with pytest.raises(ValueError, match="3 device.* do not split into groups of --gpus-per-run 2"):
        device_slots(("cuda:0", "cuda:1", "cuda:2"), 16, gpus_per_run=2)


def test_on_the_cpu_the_cores_are_split_between_jobs_as_before() -> None:
    default = device_slots(("cpu",), cpu_cores=2)
    assert [(s.devices, s.threads, s.ranks) for s in default] == [(("cpu",), 1, 1)] * 2
    env = default[0].environment()
    assert env == {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert default[0].notebook_device == "cpu" and default[1].describe() == "cpu slot 1 (1 thread)"
    assert [s.threads for s in device_slots(("cpu",), cpu_cores=16, jobs=4)] == [4] * 4
    assert len(device_slots(("cpu",), cpu_cores=16)) == 2  # min(2, cores), as --jobs always defaulted
    assert len(device_slots(("cpu",), cpu_cores=1)) == 1
    ddp = device_slots(("cpu",), cpu_cores=8, gpus_per_run=2, jobs=2)  # gloo ranks share the cores
    assert [(s.ranks, s.threads) for s in ddp] == [(2, 2), (2, 2)]
    assert ddp[0].describe() == "cpu slot 0 (2 threads, 2 ranks)"
    assert [name for name, slot in place_runs(RUNS, default) if slot.index == 1] == ["run1", "run3"]


@pytest.mark.parametrize("kwargs", [{"gpus_per_run": 0}, {"runs_per_device": 0}, {"jobs": -1}, {"jobs": True}])
def test_counts_must_be_positive(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        device_slots(("cuda:0",), 4, **kwargs)


def test_study_options_give_the_slots_and_slurm_jobs_get_their_gpus_from_slurm() -> None:
    slots = study_slots(LaunchOptions(devices="auto", runs_per_device=2), gpu_count=2, cpu_cores=8)
    assert [s.describe() for s in slots] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert [s.describe() for s in study_slots(LaunchOptions(devices="cpu"), gpu_count=2, cpu_cores=2)] == [
        "cpu slot 0 (1 thread)", "cpu slot 1 (1 thread)"]
    slurm = study_slots(LaunchOptions(launcher="slurm", gpus_per_run=2), gpu_count=0, cpu_cores=2)
    assert slurm == [DeviceSlot(0, ("cuda:0", "cuda:1"), 2, 0)]  # threads 0: torch's default in the job
    with pytest.raises(ValueError, match="launcher 'pbs' is not one of threads | local | slurm"):
        LaunchOptions(launcher="pbs")
