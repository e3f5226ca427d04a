"""Image classification: any network, cross-entropy, accuracy on train/val/test."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from litlab.core.hparams import module_args_to_ignore
from litlab.core.task import Task


class ImageClassifier(Task):
    """Trains ``model`` (images -> logits) with cross-entropy and reports accuracy.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``;
    the best checkpoint is the one with the highest ``val/acc``.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        label_smoothing: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        """Args:
        model: The network (a ``class_path`` in YAML) mapping images to ``num_classes`` logits.
        num_classes: Number of classes.
        label_smoothing: Cross-entropy label smoothing (0 disables it).
        lr: Learning rate.
        weight_decay: Weight decay.
        optimizer: Optimizer class, called with the parameters, lr and weight_decay.
        lr_scheduler: Optional LR scheduler class, called with the optimizer.
        lr_scheduler_interval: Step the scheduler every ``"epoch"`` or every ``"step"``.
        """
        super().__init__(lr, weight_decay, optimizer, lr_scheduler, lr_scheduler_interval)
        self.save_hyperparameters(logger=False, ignore=module_args_to_ignore("model"))
        self.model = model
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = getattr(self, f"{stage}_acc")
        accuracy(logits, labels)
        on_step = stage == "train"
        # Epoch-level losses are averaged over ranks under DDP; syncing every step would cost
        # a collective per batch for a number that is only displayed.
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            sync_dist=not on_step,
        )
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        return self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        return self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        probabilities = self(images).softmax(dim=-1)
        confidence, label = probabilities.max(dim=-1)
        return {"label": label, "probability": confidence}
