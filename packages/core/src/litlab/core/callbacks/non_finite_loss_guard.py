"""Stop (or skip the batch) when the training loss is NaN or infinite."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.optim import Optimizer

from litlab.core.errors import LitlabError
from litlab.core.number_types import NonNegativeInt

log = logging.getLogger(__name__)

SKIPPED_METRIC = "train/skipped_nonfinite"


class NonFiniteLossError(LitlabError):
    """The training loss or the weights stopped being finite numbers."""


class NonFiniteLossGuard(Callback):
    """Checks every training loss before its backward pass; a NaN or infinite one stops the
    run, or skips that batch's update.

    ``stop`` raises a :class:`NonFiniteLossError` naming the global step, epoch and batch, and
    the newest checkpoint of the run, before any gradient of the bad batch exists: the weights
    stay those of the step before. ``skip`` drops that optimizer step (the gradients are set to
    ``None``, so the optimizer leaves every parameter and its state alone; with gradient
    accumulation the whole accumulated step is dropped), counts it in ``train/skipped_nonfinite``
    and stops as ``stop`` does once more than ``max_skips`` batches were skipped.

    Whatever the action, a checkpoint of non-finite weights (an optimizer step that overflowed
    with a finite loss) is refused, so ``last.ckpt`` never holds them. Under DDP the ranks agree
    on each decision (one all-reduce of a flag per step).

    A default of every ``litlab`` run; configure it under ``trainer.callbacks`` to change it.
    """

    def __init__(
        self, action: Literal["stop", "skip"] = "stop", max_skips: NonNegativeInt = 10
    ) -> None:
        """Args:
        action: ``stop`` training at the first non-finite loss, or ``skip`` that batch.
        max_skips: With ``skip``: the most batches skipped before the run stops anyway.
        """
        if action not in ("stop", "skip"):
            raise LitlabError(f"NonFiniteLossGuard: action must be stop or skip, got {action!r}")
        if max_skips < 0:
            raise LitlabError(f"NonFiniteLossGuard: max_skips must be >= 0, got {max_skips}")
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._skip_step = False

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(not finite, all=False):
            return
        if self.action == "stop":
            raise NonFiniteLossError(
                f"the training loss is {_value(loss, finite)} {_where(trainer)}; training "
                f"stopped before that batch changed the weights. {_last_good(trainer)} Look for "
                f"a too-high learning rate, bad inputs or fp16 overflow; or configure "
                f"litlab.core.callbacks.NonFiniteLossGuard with action: skip under "
                f"trainer.callbacks to skip such batches."
            )
        self.skipped += 1
        self._skip_step = True
        if trainer.is_global_zero:
            log.warning(
                "skipping the batch %s: its loss is %s", _where(trainer), _value(loss, finite)
            )
        if self.skipped > self.max_skips:
            raise NonFiniteLossError(
                f"{self.skipped} batches had a NaN or infinite loss, more than max_skips="
                f"{self.max_skips}; the last {_where(trainer)}. {_last_good(trainer)} The "
                f"weights or the data are likely broken for good; raise max_skips of "
                f"NonFiniteLossGuard only if the bad batches are rare."
            )

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        if self._skip_step:
            # Optimizers leave parameters without a gradient untouched (weight decay and
            # momentum included).
            optimizer.zero_grad(set_to_none=True)
            self._skip_step = False

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.action == "skip":
            pl_module.log(SKIPPED_METRIC, float(self.skipped), on_step=True, on_epoch=False)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        broken = [name for name, p in pl_module.named_parameters() if not p.isfinite().all()]
        if trainer.strategy.reduce_boolean_decision(bool(broken), all=False):
            raise NonFiniteLossError(
                f"the weights are not finite {_where(trainer)} (e.g. {', '.join(broken[:3])}), "
                f"so no checkpoint is written over the good ones. {_last_good(trainer)} An "
                f"optimizer step overflowed: lower the learning rate, clip gradients "
                f"(--trainer.gradient_clip_val 1.0) or train in bf16 rather than fp16."
            )

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = state_dict.get("skipped", 0)


def _value(loss: torch.Tensor, finite: bool) -> str:
    if finite:
        return "finite here but not on another rank"
    return "NaN" if bool(torch.isnan(loss.detach()).any()) else "infinite"


def _where(trainer: Trainer) -> str:
    return (
        f"at global step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
        f"{trainer.fit_loop.epoch_loop.batch_idx})"
    )


def _last_good(trainer: Trainer) -> str:
    """The newest checkpoint file of the run: the state to go back to."""
    saved = {
        Path(path)
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint)
        for path in (callback.last_model_path, callback.best_model_path)
        if path and Path(path).is_file()
    }
    if not saved:
        return "No checkpoint was written before it."
    newest = max(saved, key=lambda path: path.stat().st_mtime)
    return f"The last good checkpoint is {newest}."
