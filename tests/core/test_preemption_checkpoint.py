"""PreemptionCheckpoint and ResumeState on a bare Trainer: a run stopped by a signal in the
middle of an epoch (and of a gradient accumulation cycle) and resumed ends with the weights,
EMA weights, optimizer state and logged metrics of a run that never stopped."""

import logging
import os
import signal

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.loggers import Logger
from torch.utils.data import TensorDataset
from torchmetrics import MeanMetric

from litlab.core.callbacks.preemption_checkpoint import PreemptionCheckpoint
from litlab.core.callbacks.resume_state import ResumeState
from litlab.core.resumable_loader import ResumableDataLoader

BATCHES_PER_EPOCH = 8
ACCUMULATE = 2


class DropoutRegression(LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
        )
        self.abs_error = MeanMetric()

    def training_step(self, batch, batch_idx):
        x, y = batch
        prediction = self.net(x)
        loss = torch.nn.functional.mse_loss(prediction, y)
        self.abs_error((prediction - y).abs())
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        self.log("train/abs_error", self.abs_error, on_epoch=True)
        return loss

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        data = TensorDataset(
            torch.randn(32, 4, generator=generator), torch.randn(32, 1, generator=generator)
        )
        return ResumableDataLoader(data, batch_size=4, shuffle=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.01)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


class Recorder(Logger):
    """Every logged (step, metrics), as a tracker would receive them."""

    def __init__(self):
        super().__init__()
        self.logged = []

    name, version = "recorder", 0

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, metrics))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


class SignalAtBatch(Callback):
    def __init__(self, batch, signum, times=1):
        self.batch, self.signum, self.times = batch, signum, times

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch * BATCHES_PER_EPOCH + batch_idx == self.batch:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


def fit(tmp_path, *callbacks, ckpt_path=None):
    torch.manual_seed(7)
    model = DropoutRegression()
    logger = Recorder()
    trainer = Trainer(
        max_epochs=2,
        accumulate_grad_batches=ACCUMULATE,
        callbacks=[
            EMAWeightAveraging(decay=0.9),
            PreemptionCheckpoint(tmp_path),
            ResumeState(),
            *callbacks,
        ],
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if ckpt_path is not None:
        torch.manual_seed(99)  # a new process: its generators are not where the first one left
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer, model, logger


def state(trainer, path):
    trainer.save_checkpoint(path)
    return torch.load(path, weights_only=False)


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopped_mid_epoch_and_resumed_ends_as_if_never_stopped(tmp_path, signum):
    trainer_a, _, logger_a = fit(tmp_path / "a")
    final_a = state(trainer_a, tmp_path / "a.ckpt")

    # Batch 10 of 16 (epoch 1) is the first of an accumulation cycle: the run trains batch 11
    # too and stops after its optimizer step, at global step 6.
    with pytest.raises(SystemExit):
        fit(tmp_path / "b", SignalAtBatch(10, signum))
    saved = torch.load(tmp_path / "b" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 6
    assert saved["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    trainer_b, _, logger_b = fit(tmp_path / "c", ckpt_path=tmp_path / "b" / "last.ckpt")
    final_b = state(trainer_b, tmp_path / "b.ckpt")

    assert trainer_b.global_step == trainer_a.global_step == 8
    # Weights, EMA weights, optimizer and scheduler: bit for bit.
    for key in ("state_dict", "current_model_state", "averaging_state", "lr_schedulers"):
        assert_same(final_a[key], final_b[key])
    assert_same(final_a["optimizer_states"], final_b["optimizer_states"])
    # What the logger got from the resumed run is what the uninterrupted run logged from
    # that step on, epoch means over the whole interrupted epoch included.
    first_resumed_step = logger_b.logged[0][0]
    assert first_resumed_step == 6
    assert logger_b.logged == [(s, m) for s, m in logger_a.logged if s >= first_resumed_step]
    epoch_means = [m for _, m in logger_b.logged if "train/abs_error_epoch" in m]
    assert len(epoch_means) == 1
    assert "train/loss_epoch" in epoch_means[0]


def test_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path):
    # Sent twice in the first batch of a cycle: the second one does not wait for the step.
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, SignalAtBatch(2, signal.SIGINT, times=2))
    assert exit_info.value.code == 1  # Lightning's KeyboardInterrupt exit
    assert not (tmp_path / "last.ckpt").exists()


def test_no_checkpoint_after_an_error(tmp_path):
    class Failing(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 3:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, Failing())
    assert not (tmp_path / "last.ckpt").exists()


def test_the_stop_checkpoint_says_it_holds_the_whole_state(tmp_path, caplog):
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit):
        fit(tmp_path, SignalAtBatch(3, signal.SIGTERM))
    assert "callbacks" in torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert not [m for m in caplog.messages if "`weights_only` was not set" in m]
