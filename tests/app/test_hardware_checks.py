"""A config that asks for hardware this machine lacks stops in one line before anything is
built; more CPU processes than cores is a warning."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from litlab.app.cli import main
from litlab.app.hardware_checks import check_hardware
from litlab.core.errors import LitlabError

REPO_ROOT = Path(__file__).resolve().parents[2]
FSDP = "lightning.pytorch.strategies.FSDPStrategy"


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize("strategy", ["fsdp", {"class_path": FSDP}])
def test_fsdp_without_gpus_says_how_to_run_here(strategy):
    with pytest.raises(LitlabError, match="FSDP, which needs GPUs") as raised:
        check_hardware({"accelerator": "auto", "strategy": strategy})
    assert "--trainer.accelerator cpu --trainer.strategy auto" in str(raised.value)


@pytest.mark.usefixtures("no_gpu")
def test_a_gpu_accelerator_without_gpus():
    with pytest.raises(LitlabError, match=r"trainer\.accelerator is gpu"):
        check_hardware({"accelerator": "gpu", "devices": 1})


@pytest.mark.usefixtures("no_gpu")
def test_a_subclass_of_fsdp_and_cpu_runs_pass():
    check_hardware({"accelerator": "cpu", "strategy": {"class_path": "cpu_fsdp.CPUFSDPStrategy"}})
    check_hardware({"accelerator": "auto", "strategy": "ddp", "devices": 1})


@pytest.mark.usefixtures("no_gpu")
def test_more_cpu_processes_than_cores_warns_once(caplog):
    too_many = (os.cpu_count() or 1) + 1
    with caplog.at_level(logging.WARNING):
        check_hardware({"accelerator": "cpu", "devices": too_many})
        check_hardware({"accelerator": "cpu", "devices": too_many}, warn=False)  # a DDP rank
        check_hardware({"accelerator": "cpu", "devices": 1})
    (warning,) = caplog.messages
    assert f"trainer.devices {too_many} starts {too_many} CPU processes" in warning


@pytest.mark.usefixtures("no_gpu", "in_tmp_dir")
def test_the_fsdp_preset_on_a_machine_without_gpus(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    preset = REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt_fsdp.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(preset)])
    message = str(exit_info.value.code)
    assert message.startswith("litlab: error: this config shards the model with FSDP")
    assert len(message.splitlines()) == 1
    assert not Path("runs").exists()
