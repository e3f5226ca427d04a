"""``last.ckpt``: the latest state of training, the checkpoint a run resumes from."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from litlab.core.lightning_internals import save_now


class LastCheckpoint(ModelCheckpoint):
    """Writes ``<dirpath>/last.ckpt`` after every validation (after every training epoch when
    there is none) and when training ends, replacing the one before.

    ``ModelCheckpoint(save_last=True)`` is not enough: since Lightning 2.6 it writes
    ``last.ckpt`` only at a step where a top-k checkpoint is saved too, so beside
    ``save_top_k=1`` it is a copy of the best checkpoint, and resuming from it would throw away
    every step after the best validation score.
    """

    def __init__(self, dirpath: str | Path) -> None:
        """Args:
        dirpath: Folder of the checkpoint (the run's ``checkpoints/``).
        """
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # max_steps can end training between two validations.
        save_now(self, trainer)
