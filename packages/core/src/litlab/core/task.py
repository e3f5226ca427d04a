"""The base of every litlab LightningModule: optimizer and LR schedule from the config,
and the metric that checkpoints and sweeps watch."""

from __future__ import annotations

import inspect
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from litlab.core.errors import LitlabError

TASK_OPTIMIZER_ARGS = ("lr", "weight_decay")


class Task(LightningModule):
    """A LightningModule whose optimizer and LR scheduler are set from the config.

    ``lr`` and ``weight_decay`` live on the task (so a sweep or an override names
    ``model.lr``); every other optimizer setting goes in the ``optimizer`` callable's own
    ``init_args`` (``momentum``, ``betas``, ...).

    Subclasses set ``monitor`` (the logged metric that picks the best checkpoint) and
    ``monitor_mode`` (``"max"`` or ``"min"``).
    """

    monitor: str | None = None
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """Args:
        lr: Peak learning rate given to the optimizer.
        weight_decay: Weight decay given to the optimizer.
        optimizer: Optimizer class (``class_path``) called with the parameters, lr and
            weight_decay.
        lr_scheduler: Optional scheduler class (``class_path``) called with the optimizer.
        lr_scheduler_interval: Step the scheduler every ``"epoch"`` or every optimizer ``"step"``.
        """
        super().__init__()
        _check_optimizer_leaves_lr_to_task(optimizer)
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_scheduler_interval = lr_scheduler_interval

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(
            self.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": self.lr_scheduler_interval,
                "monitor": self.monitor,
            },
        }


def _check_optimizer_leaves_lr_to_task(optimizer: OptimizerCallable) -> None:
    """Refuse an lr or weight_decay set in ``optimizer.init_args``: the task's value would
    silently replace it."""
    given = getattr(optimizer, "keywords", None) or {}
    # functools.partial(AdamW, ...) holds the class in .func; jsonargparse's partial, in .args.
    candidates = (getattr(optimizer, "func", None), *getattr(optimizer, "args", ()))
    optimizer_class = next((c for c in candidates if isinstance(c, type)), None)
    if optimizer_class is None:
        return
    defaults = inspect.signature(optimizer_class).parameters
    for name in TASK_OPTIMIZER_ARGS:
        if name in given and name in defaults and given[name] != defaults[name].default:
            raise LitlabError(
                f"optimizer.init_args.{name} is set to {given[name]}, but the task owns {name}: "
                f"set model.init_args.{name} (--model.{name}) instead."
            )
