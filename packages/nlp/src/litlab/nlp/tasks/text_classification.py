"""Text classification: any network from token ids to logits, cross-entropy, accuracy on
train/val/test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import nn

from litlab.core.classification_task import ClassificationTask
from litlab.core.data_facts import DataFacts
from litlab.core.errors import LitlabError
from litlab.core.hparams import module_args_to_ignore
from litlab.core.number_types import (
    NumClasses,
    RightOpenUnitInterval,
)
from litlab.nlp.adapters import count_parameters
from litlab.nlp.merged_export import export_merged

log = logging.getLogger(__name__)


class TextClassifier(ClassificationTask):
    """Trains ``network`` (``input_ids``, ``attention_mask`` -> logits) with cross-entropy and
    reports accuracy, for :class:`~litlab.nlp.models.rnn_classifier.RNNClassifier` and
    :class:`~litlab.nlp.models.hf_sequence_classifier.HFSequenceClassifier` alike.

    Logs, and picks the best checkpoint, as every
    :class:`~litlab.core.classification_task.ClassificationTask` does. When fitting starts, the
    trainable and total parameter counts go to the log and the loggers (``params/*``); under
    ``litlab``, wall time and peak memory follow at the end
    (:class:`~litlab.core.callbacks.ResourceReport`).
    Only trainable parameters reach the optimizer, so frozen pretrained weights (adapters,
    frozen embeddings) cost no optimizer state. ``litlab predict`` writes a CSV of ``id``,
    ``label``, ``class_name`` and ``probability``.
    """

    def __init__(
        self,
        network: nn.Module,
        num_classes: NumClasses = 2,
        label_smoothing: RightOpenUnitInterval = 0.0,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The network (a ``class_path`` in YAML) mapping token ids and attention mask
            to ``num_classes`` logits.
        num_classes: Number of classes.
        label_smoothing: Cross-entropy label smoothing (0 disables it).
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(num_classes, label_smoothing, **kwargs)
        self.save_hyperparameters(logger=False, ignore=module_args_to_ignore("network"))
        self.network = network

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.network(input_ids, attention_mask)

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def export_hf(self, path: Path, datamodule: LightningDataModule | None) -> None:
        """``litlab export --format hf``: the network as a plain Hugging Face folder, adapter
        merged in, checked by loading it back (see :func:`litlab.nlp.merged_export.export_merged`).
        """
        export_merged(self.network, path, datamodule)

    # ----- set-up checks

    def setup(self, stage: str) -> None:
        facts = self.data_facts
        self._check_data(facts)
        tokenizer = facts.tokenizer
        # Word vectors are looked up by the data's vocabulary, known only now. Resuming or
        # testing from a checkpoint overwrites them with the trained embeddings afterwards.
        if stage == "fit" and tokenizer is not None and hasattr(self.network, "load_word_vectors"):
            self.network.load_word_vectors(tokenizer.get_vocab())

    def _check_data(self, facts: DataFacts) -> None:
        data_classes = facts.num_classes
        if data_classes is not None and data_classes > self.num_classes:
            raise LitlabError(
                f"the data has labels up to {data_classes - 1}, out of range for "
                f"num_classes={self.num_classes}. Set model.init_args.num_classes (and the "
                f"network's num_classes/num_labels) to {data_classes}."
            )
        tokenizer = facts.tokenizer
        model_vocab = getattr(self.network, "vocab_size", None)
        if tokenizer is not None and model_vocab is not None and len(tokenizer) > model_vocab:
            raise LitlabError(
                f"the tokenizer has {len(tokenizer)} tokens but the model's embedding table "
                f"only {model_vocab} rows. Set the network's vocab_size to at least "
                f"{len(tokenizer)} (or the data's vocab_size to at most {model_vocab})."
            )
        if tokenizer is None:
            return
        special = {"padding_idx": tokenizer.pad_token_id}
        if getattr(self.network, "word_dropout", 0):
            special["unknown_idx"] = tokenizer.unk_token_id
        for name, token_id in special.items():
            model_id = getattr(self.network, name, None)
            if None not in (model_id, token_id) and model_id != token_id:
                raise LitlabError(
                    f"the model's {name} is {model_id} but the tokenizer's token is id "
                    f"{token_id}. Set the network's {name} to {token_id}."
                )

    def on_fit_start(self) -> None:
        count = count_parameters(self.network)
        log.info("%s: %s", type(self.network).__name__, count)
        metrics = {
            "params/trainable": count.trainable,
            "params/total": count.total,
            "params/trainable_percent": count.percent,
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    # ----- steps

    def batch_targets(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch["labels"]

    def batch_logits(self, batch: dict[str, Any], stage: str, batch_idx: int) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"])

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Batches are dicts with ``input_ids``, ``attention_mask`` and optionally ``id``."""
        return self.prediction_rows(
            self(batch["input_ids"], batch["attention_mask"]), batch.get("id")
        )
