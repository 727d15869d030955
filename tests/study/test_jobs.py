"""The study's training job with ``--gpus-per-run 2`` on the CPU: torchrun with two gloo ranks,
then run_ablation.ipynb, against the same run trained in one process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tal_lab.engine import train
from tal_lab.runs import RUN_FILES, load_run
from tal_lab.study.jobs import TrainingJob, notebook_failure, torchrun_command
from tal_lab.study.params import ablation_setup
from tal_lab.study.placement import DeviceSlot

from tiny import FAST_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
FAST = [*FAST_OVERRIDES, "engine.progress=false"]


def test_torchrun_command_trains_with_k_processes_and_resumes() -> None:
    command = torchrun_command(Path("c.yaml"), Path("/store"), "run", 4)
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert command[5:9] == ["-m", "tal_lab", "train", "c.yaml"]
    assert command[9:] == ["--output-root", "/store", "--name", "run", "--resume", "--no-progress"]


def test_two_gloo_ranks_write_one_run_that_differs_from_one_process_only_as_ddp_documents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # torchrun's ranks and the kernel import this checkout's tal_lab.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    params = {"backbone": "convTransformer", "neck": "identity", "head": "actionformer", "epochs": 2,
              "loss_weight": 1.0, "seed": 7, "dataset": "synthetic", "data_root": str(tmp_path / "data"),
              "config_file": "", "preset": "tiny", "device": "cpu", "eval_epochs": [], "overrides": FAST}
    single = ablation_setup(**params, output_root=str(tmp_path / "single"))
    train(single.cfg, single.output_root, single.run_name, progress=False)

    name = single.run_name
    slot = DeviceSlot(0, ("cpu",), ranks=2, threads=1)
    job = TrainingJob(run_name=name, notebook=ROOT / "notebooks" / "run_ablation.ipynb",
                      output=tmp_path / "work" / f"{name}.ipynb",
                      parameters={**params, "output_root": str(tmp_path / "ddp"), "run_name": name,
                                  "num_threads": slot.threads, "output_dir": str(tmp_path / "report")},
                      cwd=ROOT, environment=slot.environment(), ranks=slot.ranks)
    assert job.run() == name
    assert notebook_failure(job.output) is None
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == [name]  # one run folder for both ranks
    assert (tmp_path / "report" / "summary.json").is_file()  # the notebook drew the finished run

    one, ddp = load_run(tmp_path / "single" / name), load_run(tmp_path / "ddp" / name)
    assert one.info["status"] == ddp.info["status"] == "finished"
    assert (one.info["world_size"], ddp.info["world_size"]) == (1, 2)
    assert not ddp.info["resumed"]  # the notebook found it finished: nothing trained twice
    # The same resolved config; the differences are docs/engine.md's: the same global batch split
    # over the ranks (so the same steps per epoch) and the learning rate times the world size
    # (warm-up and peak; the cosine decays both towards the same opt.eta_min).
    assert (tmp_path / "single" / name / RUN_FILES["config"]).read_text() == \
        (tmp_path / "ddp" / name / RUN_FILES["config"]).read_text()
    assert one.metrics.groupby("epoch").size().tolist() == ddp.metrics.groupby("epoch").size().tolist()
    warmup = one.metrics["epoch"] <= one.config["opt"]["warmup_epochs"]
    np.testing.assert_allclose(ddp.metrics["lr"][warmup], 2 * one.metrics["lr"][warmup], rtol=1e-12)
    assert ddp.metrics["lr"].max() == pytest.approx(2 * one.metrics["lr"].max(), rel=1e-12)
    assert json.loads((tmp_path / "ddp" / name / RUN_FILES["results"]).read_text())["num_videos"] == \
        one.results["num_videos"]
