"""Learning-rate schedules the torch library lacks."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up from 0 to the peak LR, then cosine decay to ``min_lr_ratio`` of it.

    Steps are scheduler steps: optimizer steps with ``lr_scheduler_interval: step``, epochs with
    ``epoch``. litlab fills ``total_steps`` from the trainer when it is left unset.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        """Args:
        optimizer: The optimizer.
        warmup_steps: Steps of linear warm-up.
        total_steps: Length of the whole schedule; default: the length of training.
        min_lr_ratio: Final LR as a fraction of the peak LR.
        last_epoch: Index of the last step, for resuming.
        """
        if total_steps is None:
            raise ValueError("WarmupCosineLR needs total_steps (litlab fills it from the trainer)")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps={warmup_steps} must not be negative")
        # A shortened run (fast_dev_run, limit_train_batches) is shorter than its warm-up; it
        # then warms up over the whole run rather than failing.
        self.warmup_steps = min(warmup_steps, total_steps)
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, self._factor, last_epoch)

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(
            1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        )
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )
