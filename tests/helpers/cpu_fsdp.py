"""A test-only FSDPStrategy that runs on CPU processes (gloo), so that the FSDP configs are
trained for real on this machine, which has no GPU.

Lightning refuses ``FSDPStrategy`` with a CPU accelerator (its check is on that exact class, so
a subclass passes), and PyTorch's FSDP refuses to pick a CPU device by itself when Lightning
gives it ``device_id=None``; handed the CPU device explicitly, it shards, gathers and
checkpoints on CPU as it does on GPUs. One PyTorch step assumes a GPU: the gathered optimizer
state is copied to the CPU, which on the CPU copies nothing (see ``_copied_states``). Nothing
else is changed: wrapping policies, activation checkpointing, full-state-dict checkpoints and
gradient clipping are Lightning's own code.

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
from torch.distributed.fsdp import _optim_utils, fully_sharded_data_parallel
from torch.optim import Optimizer

_init_device_handle = fully_sharded_data_parallel._init_device_handle
_unflatten_orig_param_states = _optim_utils._unflatten_orig_param_states


def _on_cpu(state: Any, module: nn.Module, ignored_params: Any, device_id: Any) -> Any:
    return _init_device_handle(state, module, ignored_params, device_id or torch.device("cpu"))


def _copied_states(
    fsdp_param_info: Any,
    output_states: Any,
    state_name: str,
    shard_state: bool,
    to_save: bool,
    cpu_offload: bool,
) -> Any:
    # Lightning gathers optimizer states "offloaded to the CPU". On a GPU that copies each
    # state out of the buffer FSDP gathers into; on the CPU, .cpu() copies nothing, so every
    # state stays a view of that buffer, which the next state is gathered into: each saved
    # exp_avg was Adam's exp_avg_sq. Without offloading FSDP clones each state instead.
    return _unflatten_orig_param_states(
        fsdp_param_info, output_states, state_name, shard_state, to_save, False
    )


class CPUFSDPStrategy(FSDPStrategy):
    """Lightning's FSDPStrategy, with PyTorch's FSDP told to use the CPU."""

    def _setup_model(self, model: nn.Module) -> nn.Module:
        with mock.patch.object(fully_sharded_data_parallel, "_init_device_handle", _on_cpu):
            return super()._setup_model(model)

    def optimizer_state(self, optimizer: Optimizer) -> dict[str, Any]:
        with mock.patch.object(_optim_utils, "_unflatten_orig_param_states", _copied_states):
            return super().optimizer_state(optimizer)
