"""What the trainer config asks of this machine, checked before anything is built.

Lightning finds out late and deep (``No supported gpu backend found!`` from its accelerator
connector, FSDP's own device errors); these checks say it in one line, with what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")
LIGHTNING_FSDP = ("fsdp", "fsdpstrategy")
ON_CPU = "--trainer.accelerator cpu --trainer.strategy auto --trainer.devices 1"


def check_hardware(trainer: Any, warn: bool = True) -> None:
    """Raise a :class:`LitlabError` when the trainer config (a mapping or jsonargparse
    Namespace) needs GPUs this machine lacks; warn (``warn``) when it starts more CPU processes
    than there are cores."""
    accelerator = str(trainer.get("accelerator") or "auto")
    on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
    if not on_cpu:
        return
    # Lightning's own FSDP; a subclass (the tests' CPU one) knows its devices.
    if _name(trainer.get("strategy")).lower().rsplit(".", 1)[-1] in LIGHTNING_FSDP:
        raise LitlabError(
            "this config shards the model with FSDP, which needs GPUs, and this machine has "
            f"none. To train the same model here without FSDP: {ON_CPU}. The tests run FSDP "
            "on CPU processes with a test-only strategy (docs/scaling.md)."
        )
    if accelerator in GPU_ACCELERATORS:
        raise LitlabError(
            f"trainer.accelerator is {accelerator}, and this machine has no GPU that PyTorch "
            f"can use (torch.cuda.is_available() is False). To run here: {ON_CPU}."
        )
    devices = trainer.get("devices")
    cores = os.cpu_count() or 1
    if warn and isinstance(devices, int) and devices > cores:
        log.warning(
            "trainer.devices %d starts %d CPU processes on a machine with %d cores: they share "
            "the cores, so the run is slower than with --trainer.devices %d.",
            devices, devices, cores, cores,
        )  # fmt: skip


def _name(strategy: Any) -> str:
    """A strategy given by name ("fsdp") or by class path."""
    if isinstance(strategy, Mapping):
        return str(strategy.get("class_path", ""))
    return "" if strategy is None else str(getattr(strategy, "class_path", strategy))
