"""What every benchmark here shares: loops run in alternating rounds, and the Lightning side, a
bare Trainer (no logger, checkpoints, validation or progress bar) whose training loop a
callback times."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from lightning.pytorch import Callback, LightningModule, Trainer

R = TypeVar("R")


def alternate_rounds(loops: dict[str, Callable[[], R]], rounds: int) -> dict[str, list[R]]:
    """Runs every loop once per round, the order reversed every other round so that no loop
    always runs right after another; returns each loop's results in round order."""
    results: dict[str, list[R]] = {name: [] for name in loops}
    for round_index in range(rounds):
        order = list(loops) if round_index % 2 == 0 else list(loops)[::-1]
        for name in order:
            results[name].append(loops[name]())
    return results


def count_images(batch: Any) -> int:
    return len(batch[0])


def count_tokens(batch: Any) -> int:
    """The elements of a batch's inputs: token ids (B, T), padding included."""
    inputs = batch[0] if isinstance(batch, (list, tuple)) else batch["input_ids"]
    return inputs.numel()


class LoopTimer(Callback):
    """Items per second of the training loop (``on_train_start`` to ``on_train_end``, data
    loading included) and the last training loss."""

    def __init__(self, count: Callable[[Any], int]) -> None:
        self.count = count

    def on_train_start(self, trainer, pl_module):
        self.items = 0
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.items += self.count(batch)
        # No .item() here: on a GPU it would wait for every step, which a plain loop does not.
        self.loss = outputs["loss"].detach()

    def on_train_end(self, trainer, pl_module):
        self.loss = self.loss.item()
        self.elapsed = time.perf_counter() - self.start


def fit_timed(
    module: LightningModule,
    datamodule: Any,
    steps: int,
    count: Callable[[Any], int] = count_images,
    accelerator: str = "cpu",
    **trainer_options: Any,
) -> tuple[float, float]:
    """Trains ``module`` for ``steps`` steps; returns items per second and the final loss."""
    timer = LoopTimer(count)
    trainer = Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        **trainer_options,
    )
    trainer.fit(module, datamodule=datamodule)
    return timer.items / timer.elapsed, timer.loss
