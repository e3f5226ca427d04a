"""A test-only FSDPStrategy that runs on CPU processes (gloo), so that the FSDP configs are
trained for real on this machine, which has no GPU.

Lightning refuses ``FSDPStrategy`` with a CPU accelerator (its check is on that exact class, so
a subclass passes), and PyTorch's FSDP refuses to pick a CPU device by itself when Lightning
gives it ``device_id=None``; handed the CPU device explicitly, it shards, gathers and
checkpoints on CPU as it does on GPUs. Nothing else is changed: wrapping policies, activation
checkpointing, full-state-dict checkpoints and gradient clipping are Lightning's own code.

Use it in place of the config's strategy class::

    --trainer.accelerator cpu --trainer.strategy.class_path cpu_fsdp.CPUFSDPStrategy

(tests/helpers on PYTHONPATH; Lightning's launcher re-runs the command for every rank).
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torch.distributed.fsdp import fully_sharded_data_parallel

_init_device_handle = fully_sharded_data_parallel._init_device_handle


def _on_cpu(state: Any, module: nn.Module, ignored_params: Any, device_id: Any) -> Any:
    return _init_device_handle(state, module, ignored_params, device_id or torch.device("cpu"))


class CPUFSDPStrategy(FSDPStrategy):
    """Lightning's FSDPStrategy, with PyTorch's FSDP told to use the CPU."""

    def _setup_model(self, model: nn.Module) -> nn.Module:
        with mock.patch.object(fully_sharded_data_parallel, "_init_device_handle", _on_cpu):
            return super()._setup_model(model)
