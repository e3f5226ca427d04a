"""The base of every litlab LightningModule: optimizer and LR schedule from the config,
and the metric that checkpoints and sweeps watch."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch.distributed.fsdp import FullyShardedDataParallel

from litlab.core.checkpoints.checks import stamp_checkpoint
from litlab.core.checkpoints.upgrade import upgrade_checkpoint, upgraded_checkpoint_file
from litlab.core.data_facts import DataFacts, data_facts_of
from litlab.core.number_types import NonNegativeFloat, PositiveFloat

log = logging.getLogger(__name__)

TASK_OPTIMIZER_ARGS = ("lr", "weight_decay")


class Task(LightningModule):
    """A LightningModule whose optimizer and LR scheduler are set from the config.

    ``lr`` and ``weight_decay`` live on the task (so a sweep or an override names
    ``model.lr``); every other optimizer setting goes in the ``optimizer`` callable's own
    ``init_args`` (``momentum``, ``betas``, ...).

    Subclasses set ``monitor`` (the logged metric that picks the best checkpoint) and
    ``monitor_mode`` (``"max"`` or ``"min"``). A subclass takes its network as ``network``
    and holds it as ``self.network``; checkpoints of earlier litlab versions, which named it
    ``model``, still load (see :mod:`litlab.core.checkpoints.upgrade`).
    """

    monitor: str | None = None
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(
        self,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
        decay_norm_and_bias: bool = False,
    ) -> None:
        """Args:
        lr: Peak learning rate given to the optimizer.
        weight_decay: Weight decay given to the optimizer.
        optimizer: Optimizer class (``class_path``) called with the parameter groups, lr and
            weight_decay; default AdamW. Its own ``init_args.lr``/``weight_decay`` are ignored.
        lr_scheduler: Optional scheduler class (``class_path``) called with the optimizer. A
            ``total_steps`` it leaves unset is filled from the trainer (optimizer steps with
            interval ``step``, epochs with ``epoch``), as for litlab.core.schedulers'
            WarmupCosineLR and OneCycleLR.
        lr_scheduler_interval: Step the scheduler every ``"epoch"`` or every optimizer ``"step"``.
        decay_norm_and_bias: Apply weight decay to normalisation weights and biases too; by
            default they are exempt, as is usual (they set scale and offset, not capacity).
        """
        super().__init__()
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_scheduler_interval = lr_scheduler_interval
        self.decay_norm_and_bias = decay_norm_and_bias

    @property
    def attached_trainer(self) -> Trainer | None:
        """The trainer this task is attached to, or None (``trainer`` raises without one)."""
        try:
            return self.trainer
        except RuntimeError:
            return None

    @property
    def data_facts(self) -> DataFacts:
        """What the trainer's DataModule knows (:class:`~litlab.core.data_facts.DataFacts`):
        the one way a task reads its data's classes, shapes, vocabulary or tokenizer. Empty
        (every field None) without a trainer or a DataModule that provides them."""
        trainer = self.attached_trainer
        # Lightning sets Trainer.datamodule at run time without declaring it.
        datamodule = trainer.datamodule if trainer is not None else None  # type: ignore[attr-defined]
        return data_facts_of(datamodule)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # `--ckpt_path` checks name the task and litlab version a checkpoint came from.
        # Subclasses that override this hook call super() first.
        stamp_checkpoint(checkpoint, self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before it loads the state_dict, in a Trainer's restore and in
        # load_from_checkpoint: a checkpoint of an earlier litlab (state_dict keys ``model.*``)
        # is upgraded here, in place. Subclasses that override this hook call super() first.
        upgrade_checkpoint(checkpoint, self)

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO[Any],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``, for checkpoints of earlier litlab versions too.

        Lightning builds the task from the saved hyperparameters before any hook runs, so a
        checkpoint saved under a renamed argument (``model``, now ``network``) is handed to it
        upgraded (:func:`~litlab.core.checkpoints.upgrade.upgraded_checkpoint_file`: a copy in
        memory; the file is not rewritten).
        """
        if hparams_file is None:
            checkpoint_path = upgraded_checkpoint_file(checkpoint_path, weights_only) or (
                checkpoint_path
            )
        return super().load_from_checkpoint(
            checkpoint_path, map_location, hparams_file, strict, weights_only, **kwargs
        )

    def configure_model(self) -> None:
        # FSDP flattens every parameter to a 1-d shard before configure_optimizers runs (the
        # parameter objects stay the same): remember the shapes the model was built with.
        self._built_ndims = {id(p): p.ndim for p in self.parameters()}

    def _built_ndim(self, parameter: torch.Tensor) -> int:
        return getattr(self, "_built_ndims", {}).get(id(parameter), parameter.ndim)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The parts of the network that train with their own LR.

        Each dict holds ``params`` and optionally ``lr_scale`` (multiplies ``lr``). Override it,
        e.g. to give a pretrained backbone a lower LR than a new head.
        """
        return [{"params": list(self.parameters())}]

    def configure_optimizers(self) -> Any:
        groups = []
        for group in self.parameter_groups():
            lr = self.lr * group.get("lr_scale", 1.0)
            params = list(group["params"])
            # Norm weights and biases are the 1-d tensors (timm's rule), as built.
            decays = [self.decay_norm_and_bias or self._built_ndim(p) > 1 for p in params]
            decayed = [p for p, decay in zip(params, decays, strict=True) if decay]
            exempt = [p for p, decay in zip(params, decays, strict=True) if not decay]
            groups += [
                {"params": decayed, "lr": lr, "weight_decay": self.weight_decay},
                {"params": exempt, "lr": lr, "weight_decay": 0.0},
            ]
        groups = [group for group in groups if group["params"]]
        factory: Callable[..., torch.optim.Optimizer] = self.optimizer_factory or torch.optim.AdamW
        self._warn_if_optimizer_sets_task_args(factory)
        optimizer = factory(groups, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer, **self._scheduler_defaults())
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": self.lr_scheduler_interval,
                "monitor": self.monitor,
            },
        }

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        sharded = self.trainer.strategy.model
        if (
            gradient_clip_val
            and gradient_clip_algorithm in (None, "norm")
            and isinstance(sharded, FullyShardedDataParallel)
        ):
            # Under FSDP every rank holds a shard of each gradient, so only the root FSDP module
            # can take the norm over all of them; Lightning's FSDP precision plugin refuses norm
            # clipping for that reason and leaves it to this hook.
            sharded.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _warn_if_optimizer_sets_task_args(self, factory: OptimizerCallable) -> None:
        """An lr or weight_decay in ``optimizer.init_args`` loses to the task's: say so.

        Only a warning: jsonargparse carries init_args over when the optimizer class changes
        on the command line, so such a value need not be the user's.
        """
        given, defaults = _factory_arguments(factory)
        for name in TASK_OPTIMIZER_ARGS:
            value, task_value = given.get(name), getattr(self, name)
            if (
                name in given
                and name in defaults
                and value not in (defaults[name].default, task_value)
            ):
                log.warning(
                    "optimizer.init_args.%s=%s is ignored: the task's %s=%s is used. Set "
                    "model.init_args.%s (--model.%s) instead.",
                    name, value, name, task_value, name, name,
                )  # fmt: skip

    def _scheduler_defaults(self) -> dict[str, Any]:
        """The schedule length, which only the trainer knows, where the config left it unset."""
        given, accepted = _factory_arguments(self.lr_scheduler_factory)
        defaults: dict[str, Any] = {}
        if "total_steps" in accepted and given.get("total_steps") is None:
            defaults["total_steps"] = (
                int(self.trainer.estimated_stepping_batches)
                if self.lr_scheduler_interval == "step"
                else int(self.trainer.max_epochs)  # type: ignore[arg-type]  # set by fit
            )
        return defaults


def _factory_arguments(factory: Any) -> tuple[dict[str, Any], Mapping[str, inspect.Parameter]]:
    """What a config callable was given, and the parameters of the class it builds (none for
    a plain function)."""
    given = getattr(factory, "keywords", None) or {}
    # functools.partial(AdamW, ...) holds the class in .func; jsonargparse's partial, in .args.
    candidates = (factory, getattr(factory, "func", None), *getattr(factory, "args", ()))
    built = next((c for c in candidates if isinstance(c, type)), None)
    return given, inspect.signature(built).parameters if built else {}
