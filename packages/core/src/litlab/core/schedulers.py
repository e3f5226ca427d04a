"""Learning-rate schedules sized from the run: litlab fills their length from the trainer."""

from __future__ import annotations

import math
from typing import Literal

from torch.optim import Optimizer, lr_scheduler
from torch.optim.lr_scheduler import LambdaLR

from litlab.core.number_types import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt


class WarmupCosineLR(LambdaLR):
    """Linear warm-up from 0 to the peak LR, then cosine decay to ``min_lr_ratio`` of it.

    Steps are scheduler steps: optimizer steps with ``lr_scheduler_interval: step``, epochs with
    ``epoch``. litlab fills ``total_steps`` from the trainer when it is left unset.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: NonNegativeInt = 0,
        total_steps: PositiveInt | None = None,
        min_lr_ratio: ClosedUnitInterval = 0.0,
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


class OneCycleLR(lr_scheduler.OneCycleLR):
    """torch's OneCycleLR (Smith & Topin 2019) peaking at each parameter group's LR.

    The peak is the task's ``lr`` (times a group's ``lr_scale``), so ``--model.lr`` and sweeps
    change it; litlab fills ``total_steps`` from the trainer.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: PositiveFloat | list[PositiveFloat] | None = None,
        total_steps: PositiveInt | None = None,
        pct_start: ClosedUnitInterval = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        div_factor: PositiveFloat = 25.0,
        final_div_factor: PositiveFloat = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        """Args:
        optimizer: The optimizer.
        max_lr: Peak LR; default: each group's LR.
        total_steps: Length of the cycle; default: the length of training.
        pct_start: Fraction of the cycle spent increasing the LR.
        anneal_strategy: ``"cos"`` or ``"linear"`` annealing.
        div_factor: Initial LR is ``max_lr / div_factor``.
        final_div_factor: Final LR is the initial LR divided by this.
        three_phase: Use the three-phase variant (fast.ai's).
        last_epoch: Index of the last step, for resuming.
        """
        if max_lr is None:
            max_lr = [group["lr"] for group in optimizer.param_groups]
        super().__init__(
            optimizer,
            max_lr=max_lr,
            total_steps=total_steps,
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
            last_epoch=last_epoch,
        )
