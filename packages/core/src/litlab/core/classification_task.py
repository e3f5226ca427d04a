"""The step every classifier shares, whatever its inputs: cross-entropy, the label-range
check, accuracy on train/val/test, and the rows ``litlab predict`` writes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from torchmetrics.classification import MulticlassAccuracy

from litlab.core.callbacks.prediction_writer import CSVPredictionWriter
from litlab.core.class_labels import check_class_labels
from litlab.core.number_types import NumClasses, RightOpenUnitInterval
from litlab.core.task import Task


class ClassificationTask(Task):
    """A Task that sorts inputs into ``num_classes`` classes.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``;
    the best checkpoint is the one with the highest ``val/acc``. ``litlab predict`` writes a CSV
    of ``id``, ``label``, ``class_name`` (when the DataModule has ``classes``) and
    ``probability``.

    A subclass says how a batch gives its targets (:meth:`batch_targets`) and its logits
    (:meth:`batch_logits`); its ``predict_step`` returns :meth:`prediction_rows`.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        num_classes: NumClasses,
        label_smoothing: RightOpenUnitInterval = 0.0,
        **kwargs: Any,
    ) -> None:
        """Args:
        num_classes: Number of classes.
        label_smoothing: Cross-entropy label smoothing (0 disables it).
        **kwargs: The optimizer arguments of :class:`~litlab.core.task.Task`.
        """
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def batch_targets(self, batch: Any) -> torch.Tensor:
        """The batch's targets: class indices (B,) or class probabilities (B, num_classes)."""
        raise NotImplementedError

    def batch_logits(self, batch: Any, stage: str, batch_idx: int) -> torch.Tensor:
        """The network's logits (B, num_classes) for the batch's inputs."""
        raise NotImplementedError

    def configure_callbacks(self) -> list[Callback]:
        return [CSVPredictionWriter()]

    def _step(self, batch: Any, batch_idx: int, stage: str) -> dict[str, Any]:
        targets = self.batch_targets(batch)
        # Checked before the forward pass, so a bad label is named before any network error.
        check_class_labels(targets, self.num_classes, stage, batch_idx)
        logits = self.batch_logits(batch, stage, batch_idx)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        # MixUp/CutMix targets are class probabilities; accuracy counts the dominant class.
        labels = targets.argmax(dim=-1) if targets.is_floating_point() else targets
        accuracy = getattr(self, f"{stage}_acc")
        # update(), not __call__: accuracy is logged per epoch, and __call__ would also compute
        # a per-batch value every step (measurably slower on small models).
        accuracy.update(logits, labels)
        on_step = stage == "train"
        # Epoch-level losses are averaged over ranks under DDP; syncing every step would cost
        # a collective per batch for a number that is only displayed. The batch size is given
        # because Lightning cannot tell it from a dict batch.
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            sync_dist=not on_step,
            batch_size=len(labels),
        )
        self.log(
            f"{stage}/acc",
            accuracy,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
        )
        return {"loss": loss, "logits": logits.detach(), "targets": labels}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train")["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "val")["loss"]

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        # Logits and targets go to the test callbacks (a confusion matrix, say).
        return self._step(batch, batch_idx, "test")

    def prediction_rows(self, logits: torch.Tensor, ids: Any = None) -> dict[str, Any]:
        """The CSV columns for a batch: ``id`` (when the batch names its samples), ``label``,
        ``class_name`` (when the DataModule has ``classes``) and ``probability``."""
        confidence, label = logits.softmax(dim=-1).max(dim=-1)
        rows: dict[str, Any] = {}
        if ids is not None:
            rows["id"] = ids
        rows["label"] = label
        names = self.data_facts.classes
        if names:
            rows["class_name"] = [names[i] for i in label.tolist()]
        rows["probability"] = confidence
        return rows
