"""SIGTERM (a cluster pre-empting the job) and SIGINT (Ctrl+C) stop training with a checkpoint
that resumes it exactly."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litlab.core.lightning_internals import stop_after_this_step

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreemptionCheckpoint(Callback):
    """On SIGTERM or SIGINT during training, finishes the current step, writes
    ``<dirpath>/last.ckpt`` and stops training (with Lightning's ``SIGTERMException``).

    The checkpoint is taken where the state is whole: after an optimizer step (at the end of a
    gradient accumulation cycle, never inside one) and after the validation due at that step,
    so a run resumed from it goes on as if it had never stopped. Lightning's own SIGTERM
    handling stops at that point too, but after any batch, accumulation or not; SIGINT would
    raise ``KeyboardInterrupt`` wherever the code is, in the middle of an optimizer step as
    well. Here both only set Lightning's stop flag, at the end of a step.

    A second SIGINT stops at once, without a checkpoint (``last.ckpt`` then holds the state of
    the last validation). Signals outside ``fit``'s training loop keep their usual effect.

    Multi-process runs (DDP) keep Lightning's own SIGTERM handling (rank 0's signal stops every
    rank at the next batch; no deferral to the end of an accumulation cycle), with the
    checkpoint written the same way; SIGINT there stops without a checkpoint.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        """Args:
        dirpath: Folder of the checkpoint (the run's ``checkpoints/``).
        filename: Its name, without ``.ckpt``.
        """
        super().__init__()
        self.dirpath = Path(dirpath)
        self.filename = filename
        # What stopped the run and where its checkpoint went; None until then.
        self.stop_signal: signal.Signals | None = None
        self.saved_path: Path | None = None
        self._previous_handlers: dict[signal.Signals, Any] = {}

    @property
    def path(self) -> Path:
        return self.dirpath / f"{self.filename}.ckpt"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.stop_signal, self.saved_path = None, None
        # Signal handlers can only be set from the main thread.
        if trainer.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None:
            if signum == signal.SIGINT:
                self._restore_handlers()
                raise KeyboardInterrupt
            return
        self.stop_signal = signal.Signals(signum)
        log.info(
            "%s received: training stops at the end of this step, with a checkpoint%s.",
            self.stop_signal.name,
            " (Ctrl+C again stops at once, without one)" if signum == signal.SIGINT else "",
        )

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.stop_signal is not None and _optimizer_stepped(trainer, batch_idx):
            # What Lightning's own SIGTERM handler does: it stops after this step's validation,
            # if one is due, and calls on_exception with SIGTERMException.
            stop_after_this_step(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_handlers()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()
        # Lightning raises SIGTERMException only between steps; any other exception can come
        # from the middle of one, whose state is not worth resuming.
        if not isinstance(exception, SIGTERMException):
            return
        self.stop_signal = self.stop_signal or signal.SIGTERM
        # The whole state (weights_only=False said, not defaulted to with Lightning's notice).
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_path = self.path
        if trainer.is_global_zero:
            log.info(
                "Stopped by %s at step %d (epoch %d); the state to resume from is in %s",
                self.stop_signal.name,
                trainer.global_step,
                trainer.current_epoch,
                self.path,
            )

    def _restore_handlers(self) -> None:
        # Before Lightning's teardown, which puts back the handlers from before training.
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}


def _optimizer_stepped(trainer: Trainer, batch_idx: int) -> bool:
    """Whether the batch that just ended closed a gradient accumulation cycle (Lightning steps
    the optimizer every ``accumulate_grad_batches`` batches and at the last batch)."""
    if not trainer.lightning_module.automatic_optimization:
        return True
    batches = batch_idx + 1
    return batches % trainer.accumulate_grad_batches == 0 or batches >= trainer.num_training_batches
