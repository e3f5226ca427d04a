"""A callback that sends its own process a signal at a given training step: a pre-emption at a
known point, for the resume tests (``trainer.callbacks`` in a test config; importable by a
``litlab`` subprocess when ``tests/helpers`` is on its PYTHONPATH)."""

from __future__ import annotations

import os

from lightning.pytorch import Callback, LightningModule, Trainer


class SignalAtStep(Callback):
    """Sends ``signum`` to this process when the first batch after optimizer step ``step``
    starts (``trainer.global_step == step``), once per process."""

    def __init__(self, step: int, signum: int = 15) -> None:
        """Args:
        step: The ``trainer.global_step`` after which the signal is sent.
        signum: The signal (15: SIGTERM, 2: SIGINT).
        """
        self.step = step
        self.signum = signum
        self.sent = False

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
