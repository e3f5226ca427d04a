"""A tiny LightningModule whose validation score is best at the first validation, so best.ckpt
and last.ckpt differ (the checkpoint and artifact tests)."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule
from torch.utils.data import DataLoader, TensorDataset


class WorseEveryValidation(LightningModule):
    """Its validation loss is 0 at the first validation and grows by 1 at every later one."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.validations = 0

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", float(self.validations))

    def on_validation_epoch_end(self):
        self.validations += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    """Four batches of two random 2-d points."""
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)
