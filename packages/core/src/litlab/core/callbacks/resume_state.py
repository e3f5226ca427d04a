"""What a checkpoint needs, beyond Lightning's own state, for a run resumed from it to go on
exactly as an uninterrupted one, and which run (and W&B run) it belongs to."""

from __future__ import annotations

import os
import random
from typing import Any, cast

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torchmetrics import Metric

from litlab.core.lightning_internals import epoch_results, wandb_init_args

# The checkpoint's key for the run it belongs to (read by `litlab fit --ckpt_path`).
RUN_KEY = "litlab_run"


class ResumeState(Callback):
    """Makes a resumed run go on exactly as the run that wrote the checkpoint would have.

    Lightning restores the weights, optimizers, LR schedulers, loops and callbacks; this adds:

    - the global random states (torch, CUDA, numpy, Python), saved in every checkpoint and put
      back when training starts (after the sanity check), so dropout, noise and MixUp draw
      after the resume what the uninterrupted run drew;
    - the training loaders' place in the epoch (see
      :class:`~litlab.core.resumable_loader.ResumableDataLoader`), which Lightning saves and
      restores itself, but does not hand back when ``configure_optimizers`` asked for
      ``trainer.estimated_stepping_batches``, as a scheduler's ``total_steps`` does (Lightning
      issue #20550; tests/core/test_loader_state_in_checkpoint.py fails once it is fixed);
    - after a resume in the middle of an epoch, the sums behind that epoch's training metrics
      (``self.log(..., on_epoch=True)`` in ``training_step`` and the torchmetrics of the
      module), so ``train/loss_epoch`` and ``train/acc`` cover the whole epoch, not just its
      part after the resume.

    Under DDP the random states saved are rank zero's and every rank gets them (Lightning seeds
    all ranks alike); the epoch's metric sums are not put back (the epoch values then cover
    the part after the resume).

    ``checkpoint["litlab_run"]`` holds ``run_dir``, ``wandb_run_id`` and ``wandb_run_name``
    (None without a W&B logger): ``litlab fit --ckpt_path`` continues that W&B run, under its
    first name.
    """

    def __init__(self) -> None:
        super().__init__()
        self._random_states: dict[str, Any] | None = None
        self._loader_states: list[dict[str, Any]] | None = None
        self._epoch_metrics: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"random_states": random_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._random_states = state_dict.get("random_states")

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        first = wandb_loggers[0] if wandb_loggers else None
        checkpoint[RUN_KEY] = {
            "run_dir": os.path.abspath(trainer.default_root_dir),
            "wandb_run_id": first.version if first else None,
            # The name the run was started with (its overrides), kept by the resumed part.
            "wandb_run_name": wandb_init_args(first).get("name") if first else None,
            "epoch_metrics": {
                "epoch": trainer.current_epoch,
                "logged": _logged_epoch_sums(trainer),
                "torchmetrics": _torchmetrics_states(pl_module),
            },
        }

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._loader_states = fit_loop.get("state_dict", {}).get("combined_loader")
        if trainer.world_size == 1:
            self._epoch_metrics = checkpoint.get(RUN_KEY, {}).get("epoch_metrics")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        states, self._random_states = self._random_states, None
        if states is not None:
            set_random_states(states)
        loader_states, self._loader_states = self._loader_states, None
        if loader_states:
            # The loaders iterate lazily: a state given now still decides the first batch.
            # Loading one that Lightning loaded already does the same again.
            loaders = [
                loader
                for loader in CombinedLoader(trainer.train_dataloader).flattened
                if callable(getattr(loader, "load_state_dict", None))
            ]
            if len(loaders) == len(loader_states):
                for loader, state in zip(loaders, loader_states, strict=True):
                    loader.load_state_dict(state)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        saved = self._epoch_metrics
        if saved is None:
            return
        if saved["epoch"] != trainer.current_epoch:  # saved at the end of its epoch
            self._epoch_metrics = None
            return
        for name, module in pl_module.named_modules():
            if isinstance(module, Metric) and name in saved["torchmetrics"]:
                for state, value in saved["torchmetrics"][name].items():
                    setattr(module, state, _to(value, module.device))

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        saved, self._epoch_metrics = self._epoch_metrics, None
        if saved is None:
            return
        # Lightning creates its accumulators at the first `self.log` of the resumed run; the
        # sums of the batches before the resume are added to them now.
        for key, result in epoch_results(trainer).items():
            if key in saved["logged"] and result.is_tensor:
                _merge_sums(result, saved["logged"][key])


def _logged_epoch_sums(trainer: Trainer) -> dict[str, dict[str, torch.Tensor]]:
    """The running sums of the values training logs for the epoch, by Lightning's key (read
    from the training loop's result collection: see litlab.core.lightning_internals)."""
    sums = {}
    for key, result in epoch_results(trainer).items():
        if result.is_tensor and result.meta.on_epoch:
            sums[key] = {"value": result.value}
            if result.meta.is_mean_reduction:
                sums[key]["cumulated_batch_size"] = result.cumulated_batch_size
    return sums


def _merge_sums(result: Any, saved: dict[str, torch.Tensor]) -> None:
    meta = result.meta
    value = saved["value"].to(result.value.device)
    if meta.is_mean_reduction:
        result.value = result.value + value
        batch_size = saved["cumulated_batch_size"].to(result.cumulated_batch_size.device)
        result.cumulated_batch_size = result.cumulated_batch_size + batch_size
    elif meta.is_sum_reduction:
        result.value = result.value + value
    elif meta.is_max_reduction or meta.is_min_reduction:
        result.value = meta.reduce_fx(result.value, value)


def _torchmetrics_states(module: LightningModule) -> dict[str, dict[str, Any]]:
    return {
        name: dict(submodule.metric_state)
        for name, submodule in module.named_modules()
        if isinstance(submodule, Metric)
    }


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, list):
        return [item.to(device) for item in value]
    return value.to(device)


def random_states() -> dict[str, Any]:
    """torch's, CUDA's (when there is a GPU), numpy's and Python's global random states, as
    tensors and plain Python values: a checkpoint holding them still loads with
    ``torch.load(weights_only=True)``, as LightningCLI loads a ``--ckpt_path``."""
    # The legacy tuple (numpy's stubs allow the dict of get_state(legacy=False) too).
    name, keys, position, has_gauss, cached_gaussian = cast(
        "tuple[str, np.ndarray, int, int, float]", np.random.get_state()
    )
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [
            name,
            torch.from_numpy(keys.astype(np.int64)),
            position,
            has_gauss,
            cached_gaussian,
        ],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict[str, Any]) -> None:
    """Put back the states :func:`random_states` returned; a CUDA state saved on a GPU machine
    is left out on one without a GPU."""
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state(
        (name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian)
    )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])
