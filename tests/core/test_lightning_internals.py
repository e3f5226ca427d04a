"""The private Lightning names litlab.core.lightning_internals uses are where it expects them.

Each test exercises one function there against the installed Lightning: a release that renames
or moves one of those names fails here, not in the middle of a run. The upper bound on
``lightning`` in packages/core/pyproject.toml is the module's CHECKED_BELOW, so raising it means
reading these tests again.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightning
import pytest
import tomllib
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from packaging.version import Version
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core import lightning_internals as internals

ROOT = Path(__file__).resolve().parents[2]


class Tiny(LightningModule):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)


def quiet_trainer(tmp_path: Path, **kwargs) -> Trainer:
    kwargs.setdefault("enable_checkpointing", False)
    return Trainer(
        default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


def test_the_upper_bound_is_the_version_checked_below():
    dependencies = tomllib.loads((ROOT / "packages/core/pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    (lightning_requirement,) = [d for d in dependencies if re.match(r"lightning\b", d)]
    assert f"<{internals.CHECKED_BELOW}" in lightning_requirement.replace(" ", "")
    assert Version(lightning.__version__) < Version(internals.CHECKED_BELOW)


def test_cli_given_hyperparameters_is_the_context_lightning_cli_sets():
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

    assert internals.cli_given_hyperparameters() is None
    with _given_hyperparameters_context(hparams={"width": 3}, instantiator="x"):
        assert internals.cli_given_hyperparameters()["width"] == 3
    assert internals.cli_given_hyperparameters() is None


def test_skipped_hyperparameters_are_not_logged(tmp_path):
    logged = []

    class Recorder(lightning.pytorch.loggers.CSVLogger):
        def log_hyperparams(self, params, *args, **kwargs):
            logged.append(dict(params))

    class Data(LightningDataModule):
        def __init__(self, size: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)

    for skip in (False, True):
        module, data = Tiny(), Data()
        if skip:
            internals.skip_hyperparameter_logging(module)
            internals.skip_hyperparameter_logging(data)
        trainer = quiet_trainer(tmp_path, max_steps=1)
        trainer.loggers = [Recorder(tmp_path)]
        trainer.fit(module, datamodule=data)
    assert logged == [{"width": 2, "size": 4}]


def test_stop_after_this_step_is_lightnings_sigterm_flag(tmp_path):
    trainer = quiet_trainer(tmp_path)
    assert trainer.received_sigterm is False
    internals.stop_after_this_step(trainer)
    assert trainer.received_sigterm is True


def test_shards_data_is_the_trainers_use_distributed_sampler(tmp_path):
    assert internals.shards_data(quiet_trainer(tmp_path)) is True
    assert internals.shards_data(quiet_trainer(tmp_path, use_distributed_sampler=False)) is False
    # The attribute itself, not the stand-in's default.
    assert hasattr(quiet_trainer(tmp_path), "_accelerator_connector")


def test_epoch_results_hold_the_epochs_logged_sums(tmp_path):
    seen = {}

    class Peek(lightning.pytorch.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            for key, result in internals.epoch_results(trainer).items():
                assert result.is_tensor
                assert result.meta.on_epoch
                assert result.meta.is_mean_reduction
                seen[key] = (result.value.clone(), int(result.cumulated_batch_size))

    quiet_trainer(tmp_path, max_steps=2, callbacks=[Peek()]).fit(Tiny())
    ((value, batch_size),) = [v for key, v in seen.items() if key.endswith("train/loss")]
    assert value.ndim == 0
    assert batch_size == 4  # two batches of two


def test_save_now_writes_through_the_top_k_bookkeeping(tmp_path):
    saved = []

    class Every(ModelCheckpoint):
        def on_train_end(self, trainer, pl_module):
            internals.save_now(self, trainer)
            saved.append(self.best_model_path)

    callback = Every(dirpath=tmp_path, filename="now", monitor=None, save_top_k=1,
                     every_n_epochs=10**6)  # fmt: skip
    trainer = quiet_trainer(tmp_path, max_steps=3, callbacks=[callback], enable_checkpointing=True)
    trainer.fit(Tiny())
    assert saved == [str(tmp_path / "now.ckpt")]
    assert torch.load(saved[0], weights_only=False)["global_step"] == 3


def test_averaged_module_is_the_weight_averaging_copy(tmp_path):
    seen = []

    class Peek(lightning.pytorch.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(internals.averaged_module(ema))

    ema = EMAWeightAveraging()
    assert internals.averaged_module(ema) is None
    quiet_trainer(tmp_path, max_steps=2, callbacks=[ema, Peek()]).fit(Tiny())
    assert all(isinstance(average, Tiny) for average in seen)


def test_wandb_logger_internals(tmp_path):
    logger = WandbLogger(name="given", save_dir=str(tmp_path), mode="disabled")
    args = internals.wandb_init_args(logger)
    assert args["name"] == "given"
    assert args["mode"] == "disabled"
    args["project"] = "changed"
    assert internals.wandb_init_args(logger)["project"] == "changed"  # live, not a copy

    internals.set_wandb_run_identity(logger, str(tmp_path / "run"), "abc123")
    assert logger.save_dir == str(tmp_path / "run")
    assert logger.version == "abc123"

    assert internals.started_wandb_run(logger) is None
    run = logger.experiment
    assert internals.started_wandb_run(logger) is run
    assert internals.forget_wandb_run(logger) is run
    assert internals.started_wandb_run(logger) is None
    run.finish()


@pytest.mark.parametrize("name", ["_save_dir", "_id", "_experiment", "_wandb_init"])
def test_wandb_logger_sets_the_attributes_litlab_reads(tmp_path, name):
    assert name in vars(WandbLogger(save_dir=str(tmp_path), mode="disabled"))
