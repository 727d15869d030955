"""Where the study's runs train: device slots, and the environment each run's kernel gets.

A **slot** is one place a run trains at a time: a group of ``gpus_per_run`` GPUs, or the CPU.
On GPUs, each group of ``gpus_per_run`` devices gives ``runs_per_device`` slots (default 1: one
run per GPU); a kernel sees only its slot's devices (``CUDA_VISIBLE_DEVICES``), so inside it
``cuda`` is its own first GPU. On the CPU there are ``jobs`` slots (default min(2, cores)) and
the cores are split between them, as the study always did: each slot's torch threads are
``cores // (slots x ranks)``. A slot with ``gpus_per_run`` K > 1 trains each run with K
processes (``torchrun``; gloo ranks on the CPU).

Everything here is pure (no CUDA call): the visible GPU count and the core count come in as
arguments, so the rules are tested with fake device lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["CPU", "DeviceSlot", "parse_devices", "device_slots", "place_runs"]

CPU = "cpu"
# Runs trained at once on the CPU when --jobs is not given (the study's default since issue 6).
DEFAULT_CPU_JOBS = 2


@dataclass(frozen=True)
class DeviceSlot:
    """One place a run trains: its devices, its processes and the CPU threads of each.

    Attributes:
        index: the slot's number (0 first).
        devices: ``('cpu',)`` or the CUDA devices of the group, e.g. ``('cuda:2', 'cuda:3')``.
        ranks: processes per run (``gpus_per_run``): 1, or K torchrun ranks.
        threads: torch CPU threads of each process (0: torch's default, where the job's CPUs are not known).
    """

    index: int
    devices: tuple[str, ...]
    ranks: int
    threads: int

    @property
    def on_gpu(self) -> bool:
        return self.devices[0] != CPU

    @property
    def gpu_ids(self) -> tuple[int, ...]:
        """The slot's CUDA device numbers (empty on the CPU)."""
        return tuple(int(d.split(":")[1]) for d in self.devices) if self.on_gpu else ()

    @property
    def notebook_device(self) -> str:
        """The ``device`` parameter of the slot's kernel: it sees only its own GPUs, so 'cuda'
        is the slot's first one."""
        return "cuda" if self.on_gpu else CPU

    def environment(self) -> dict[str, str]:
        """The variables a kernel (and its torchrun ranks) of this slot starts with: only its
        GPUs visible (none on the CPU slot), and its share of the CPU threads."""
        threads = str(self.threads)
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in self.gpu_ids), "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads}

    def describe(self) -> str:
        """E.g. 'cuda:0', 'cuda:0+cuda:1 (2 ranks)', 'cpu slot 1 (2 threads)'."""
        ranks = f", {self.ranks} ranks" if self.ranks > 1 else ""
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        if self.on_gpu:
            return "+".join(self.devices) + (f" ({self.ranks} ranks)" if self.ranks > 1 else "")
        return f"cpu slot {self.index} ({threads}{ranks})"


def parse_devices(text: str, gpu_count: int) -> tuple[str, ...]:
    """The devices ``--devices`` names: 'auto' (every visible GPU, else the CPU), 'cpu',
    'cuda' (the first GPU) or a list 'cuda:0,cuda:1,...'.

    Raises:
        ValueError: an unknown name, a repeated device, or a GPU beyond the ``gpu_count`` visible.
    """
    text = text.strip()
    if text == "auto":
        return tuple(f"cuda:{i}" for i in range(gpu_count)) or (CPU,)
    if text == CPU:
        return (CPU,)
    names = ["cuda:0" if name.strip() == "cuda" else name.strip() for name in text.split(",") if name.strip()]
    bad = [n for n in names if not (n.startswith("cuda:") and n[5:].isdigit())]
    if bad or not names:
        raise ValueError(f"--devices {text!r}: {bad or 'nothing'} is not a device; use auto, cpu or a list like "
                         f"cuda:0,cuda:1")
    if len(set(names)) != len(names):
        raise ValueError(f"--devices {text!r} names a device twice")
    missing = [n for n in names if int(n[5:]) >= gpu_count]
    if missing:
        raise ValueError(f"--devices {text!r}: {', '.join(missing)} asked for, but {gpu_count} CUDA device(s) "
                         f"are visible here")
    return tuple(names)


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def device_slots(devices: Sequence[str], cpu_cores: int, gpus_per_run: int = 1, runs_per_device: int | None = None,
                 jobs: int | None = None) -> list[DeviceSlot]:
    """The slots runs train in, in the order they are filled.

    On GPUs the devices are grouped ``gpus_per_run`` at a time, each group holding
    ``runs_per_device`` slots; slots go round the groups first, so ``jobs`` below their number
    still spreads over the devices. On the CPU there are ``jobs`` slots (default
    ``runs_per_device``, else min(2, cores)).

    Raises:
        ValueError: a count that is not positive, devices that do not split into groups of
            ``gpus_per_run``, or more ``jobs`` than GPU slots.
    """
    for name, value in (("gpus_per_run", gpus_per_run), ("runs_per_device", runs_per_device), ("jobs", jobs)):
        _positive(name, value)
    cores = max(1, cpu_cores)
    if tuple(devices) == (CPU,):
        count = jobs or runs_per_device or min(DEFAULT_CPU_JOBS, cores)
        threads = max(1, cores // (count * gpus_per_run))
        return [DeviceSlot(i, (CPU,), gpus_per_run, threads) for i in range(count)]
    if CPU in devices:
        raise ValueError(f"devices {list(devices)} mix the CPU and GPUs; choose one")
    if len(devices) % gpus_per_run:
        raise ValueError(f"{len(devices)} device(s) {list(devices)} do not split into groups of --gpus-per-run "
                         f"{gpus_per_run}")
    groups = [tuple(devices[i:i + gpus_per_run]) for i in range(0, len(devices), gpus_per_run)]
    order = [group for _ in range(runs_per_device or 1) for group in groups]
    if jobs is not None and jobs > len(order):
        raise ValueError(f"--jobs {jobs} is more than the {len(order)} slot(s) of {len(devices)} GPU(s) "
                         f"({runs_per_device or 1} run(s) per device); raise --runs-per-device to pack more")
    order = order[:jobs] if jobs else order
    threads = max(1, cores // (len(order) * gpus_per_run))
    return [DeviceSlot(i, group, gpus_per_run, threads) for i, group in enumerate(order)]


def place_runs(run_names: Sequence[str], slots: Sequence[DeviceSlot]) -> list[tuple[str, DeviceSlot]]:
    """Runs in plan order, each on the slot that frees first if runs took equal time: slot
    ``i mod len(slots)``. (While training, a run takes whichever slot is free.)"""
    if not slots:
        raise ValueError("no device slot to place runs on")
    return [(name, slots[i % len(slots)]) for i, name in enumerate(run_names)]
