"""Text classification: any network from token ids to logits, cross-entropy, accuracy on
train/val/test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningDataModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from litlab.core.callbacks import CSVPredictionWriter
from litlab.core.class_labels import check_class_labels
from litlab.core.errors import LitlabError
from litlab.core.hparams import module_args_to_ignore
from litlab.core.number_types import (
    NonNegativeFloat,
    NumClasses,
    PositiveFloat,
    RightOpenUnitInterval,
)
from litlab.core.task import Task
from litlab.nlp.adapters import count_parameters
from litlab.nlp.merged_export import export_merged

log = logging.getLogger(__name__)


class TextClassifier(Task):
    """Trains ``model`` (``input_ids``, ``attention_mask`` -> logits) with cross-entropy and
    reports accuracy, for :class:`~litlab.nlp.models.rnn_classifier.RNNClassifier` and
    :class:`~litlab.nlp.models.hf_sequence_classifier.HFSequenceClassifier` alike.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``;
    the best checkpoint is the one with the highest ``val/acc``. When fitting starts, the
    trainable and total parameter counts go to the log and the loggers (``params/*``); under
    ``litlab``, wall time and peak memory follow at the end
    (:class:`~litlab.core.callbacks.ResourceReport`).
    Only trainable parameters reach the optimizer, so frozen pretrained weights (adapters,
    frozen embeddings) cost no optimizer state. ``litlab predict`` writes a CSV of ``id``,
    ``label``, ``class_name`` and ``probability``.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        model: nn.Module,
        num_classes: NumClasses = 2,
        label_smoothing: RightOpenUnitInterval = 0.0,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
        decay_norm_and_bias: bool = False,
    ) -> None:
        """Args:
        model: The network (a ``class_path`` in YAML) mapping token ids and attention mask
            to ``num_classes`` logits.
        num_classes: Number of classes.
        label_smoothing: Cross-entropy label smoothing (0 disables it).
        lr: Learning rate.
        weight_decay: Weight decay.
        optimizer: Optimizer class, called with the parameter groups, lr and weight_decay;
            default AdamW.
        lr_scheduler: Optional LR scheduler class, called with the optimizer.
        lr_scheduler_interval: Step the scheduler every ``"epoch"`` or every ``"step"``.
        decay_norm_and_bias: Weight-decay norm weights and biases too (default: exempt).
        """
        super().__init__(
            lr, weight_decay, optimizer, lr_scheduler, lr_scheduler_interval, decay_norm_and_bias
        )
        self.save_hyperparameters(logger=False, ignore=module_args_to_ignore("model"))
        self.model = model
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.model(input_ids, attention_mask)

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def export_hf(self, path: Path, datamodule: LightningDataModule | None) -> None:
        """``litlab export --format hf``: the network as a plain Hugging Face folder, adapter
        merged in, checked by loading it back (see :func:`litlab.nlp.merged_export.export_merged`).
        """
        export_merged(self.model, path, datamodule)

    def configure_callbacks(self) -> list[Callback]:
        return [CSVPredictionWriter()]

    # ----- set-up checks

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer else None
        if datamodule is None:
            return
        self._check_data(datamodule)
        tokenizer = getattr(datamodule, "tokenizer", None)
        # Word vectors are looked up by the data's vocabulary, known only now. Resuming or
        # testing from a checkpoint overwrites them with the trained embeddings afterwards.
        if stage == "fit" and tokenizer is not None and hasattr(self.model, "load_word_vectors"):
            self.model.load_word_vectors(tokenizer.get_vocab())

    def _check_data(self, datamodule: Any) -> None:
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes > self.num_classes:
            raise LitlabError(
                f"the data has labels up to {data_classes - 1}, out of range for "
                f"num_classes={self.num_classes}. Set model.init_args.num_classes (and the "
                f"network's num_classes/num_labels) to {data_classes}."
            )
        tokenizer = getattr(datamodule, "tokenizer", None)
        model_vocab = getattr(self.model, "vocab_size", None)
        if tokenizer is not None and model_vocab is not None and len(tokenizer) > model_vocab:
            raise LitlabError(
                f"the tokenizer has {len(tokenizer)} tokens but the model's embedding table "
                f"only {model_vocab} rows. Set the network's vocab_size to at least "
                f"{len(tokenizer)} (or the data's vocab_size to at most {model_vocab})."
            )
        if tokenizer is None:
            return
        special = {"padding_idx": tokenizer.pad_token_id}
        if getattr(self.model, "word_dropout", 0):
            special["unknown_idx"] = tokenizer.unk_token_id
        for name, token_id in special.items():
            model_id = getattr(self.model, name, None)
            if None not in (model_id, token_id) and model_id != token_id:
                raise LitlabError(
                    f"the model's {name} is {model_id} but the tokenizer's token is id "
                    f"{token_id}. Set the network's {name} to {token_id}."
                )

    def on_fit_start(self) -> None:
        count = count_parameters(self.model)
        log.info("%s: %s", type(self.model).__name__, count)
        metrics = {
            "params/trainable": count.trainable,
            "params/total": count.total,
            "params/trainable_percent": count.percent,
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    # ----- steps

    def _step(self, batch: dict[str, Any], batch_idx: int, stage: str) -> torch.Tensor:
        labels = batch["labels"]
        check_class_labels(labels, self.num_classes, stage, batch_idx)
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = getattr(self, f"{stage}_acc")
        # update(), not __call__: accuracy is logged per epoch; __call__ would also compute a
        # per-batch value every step.
        accuracy.update(logits, labels)
        on_step = stage == "train"
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
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Batches are dicts with ``input_ids``, ``attention_mask`` and optionally ``id``."""
        probabilities = self(batch["input_ids"], batch["attention_mask"]).softmax(dim=-1)
        confidence, label = probabilities.max(dim=-1)
        rows: dict[str, Any] = {}
        if "id" in batch:
            rows["id"] = batch["id"]
        rows["label"] = label
        names = getattr(self.trainer.datamodule, "classes", None) if self._trainer else None
        if names:
            rows["class_name"] = [names[i] for i in label.tolist()]
        rows["probability"] = confidence
        return rows
