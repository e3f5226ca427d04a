"""Tiny tasks for the `litlab export` tests: one that describes its export (export_spec), one
that only sets Lightning's example_input_array, one that does neither. Importable by class
path (tests/helpers is on sys.path), so a config file can name them."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.export import DynamicAxis, ExportSpec, TensorSpec

IN_FEATURES = 4
OUT_FEATURES = 3


class NotExportable(LightningModule):
    """An MLP on 4 features with neither an export_spec nor an example_input_array."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Sequential(
            nn.Linear(IN_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, OUT_FEATURES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TinyRegressor(NotExportable):
    """Exports ``model`` as features (batch, 4) -> outputs (batch, 3)."""

    def export_spec(self, datamodule: LightningDataModule | None) -> ExportSpec:
        batch = DynamicAxis("batch")
        return ExportSpec(
            network=self.model,
            inputs=(TensorSpec("features", (batch, IN_FEATURES)),),
            outputs=(TensorSpec("outputs", (batch, OUT_FEATURES)),),
            metadata={"note": "tiny"},
        )


class ExampleInputRegressor(NotExportable):
    """Exportable through Lightning's ``example_input_array`` alone."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__(hidden)
        self.example_input_array = torch.zeros(2, IN_FEATURES)


def fit_and_save(task: LightningModule, path) -> None:
    """A real Lightning checkpoint of ``task`` after one training step."""
    data = TensorDataset(torch.randn(4, IN_FEATURES), torch.randn(4, OUT_FEATURES))
    trainer = Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(task, DataLoader(data, batch_size=4))
    trainer.save_checkpoint(path)
