"""TextClassifier with a label outside its classes: the batch, the sample and the label."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn
from torch.utils.data import DataLoader

from litlab.core.errors import LitlabError
from litlab.nlp.tasks.text_classification import TextClassifier


class BagOfTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(10, 2, mode="sum")

    def forward(self, input_ids, attention_mask):
        return self.embedding(input_ids, per_sample_weights=attention_mask.float())


def test_label_outside_the_classes_names_batch_and_sample():
    labels = [0, 1, 1, 0, 0, 2]  # 2 is not a class of 2
    rows = [
        {"input_ids": torch.tensor([i, i + 1]), "attention_mask": torch.ones(2), "labels": y}
        for i, y in enumerate(labels)
    ]
    trainer = Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(LitlabError) as info:
        trainer.fit(TextClassifier(BagOfTokens(), num_classes=2), DataLoader(rows, batch_size=4))
    assert str(info.value).startswith(
        "train batch 1: sample 1 of the batch has label 2, outside 0..1 (num_classes=2"
    )
