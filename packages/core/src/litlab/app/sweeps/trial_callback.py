"""The trial side of a sweep: report the metric to the study, stop when pruned, write the result.

``litlab fit`` adds :class:`SweepTrialCallback` by itself when a sweep started it (the
environment of :mod:`litlab.app.sweeps.trial_protocol`); nothing in the experiment config
changes. The swept values arrive on the command line, so under DDP every rank has the same
ones; rank zero alone talks to the study and tells the other ranks whether to stop.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from litlab.app.sweeps.trial_protocol import (
    METRIC_ENV,
    PRUNER_ENV,
    RESULT_ENV,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ID_ENV,
    TrialResult,
)

log = logging.getLogger(__name__)


class SweepTrialCallback(Callback):
    """Reports ``metric`` after every validation (step = the number of validations so far, W&B
    hyperband's "iterations") to an Optuna trial, stops training when the study's pruner says
    so, and writes a :class:`TrialResult` when fit ends."""

    def __init__(
        self,
        metric: str,
        result_path: str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        trial_id: int | None = None,
        pruner_settings: dict[str, Any] | None = None,
    ) -> None:
        """Args:
        metric: The logged metric the sweep optimises (``val/acc``).
        result_path: Where to write the trial's result (JSON) when fit ends.
        storage: The study's Optuna storage URL; without it nothing is reported.
        study_name: The study's name in that storage.
        trial_id: The Optuna trial id (not number) this run is.
        pruner_settings: The sweep's pruner (see ``optuna_space.pruner_settings``).
        """
        super().__init__()
        self.metric = metric
        self.result_path = result_path
        self.storage = storage
        self.study_name = study_name
        self.trial_id = trial_id
        self.pruner_settings = pruner_settings
        self.validations = 0
        self.pruned = False
        self._trial: Any = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if (
            trainer.is_global_zero
            and self.storage
            and self.trial_id is not None
            and self._trial is None
        ):
            import optuna

            from litlab.app.sweeps.optuna_space import pruner_from_settings

            study = optuna.load_study(
                study_name=self.study_name,
                storage=self.storage,
                pruner=pruner_from_settings(self.pruner_settings),
            )
            self._trial = optuna.trial.Trial(study, self.trial_id)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.validations += 1
        prune = False
        value = _as_float(trainer.callback_metrics.get(self.metric))
        reportable = value is not None and math.isfinite(value)
        if trainer.is_global_zero and self._trial is not None and reportable:
            self._trial.report(value, step=self.validations)
            prune = self._trial.should_prune()
        # Every rank stops at the same step; only rank zero asked the study.
        if trainer.strategy.broadcast(prune):
            self.pruned = True
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.info(
                    "Sweep trial pruned after %d validations (%s = %s): stopping.",
                    self.validations, self.metric, value,
                )  # fmt: skip

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero or not self.result_path:
            return
        TrialResult(
            metric=self.metric,
            value=_as_float(trainer.callback_metrics.get(self.metric)),
            pruned=self.pruned,
            validations=self.validations,
            epochs=trainer.current_epoch,
            global_step=trainer.global_step,
            logged_metrics=sorted(trainer.callback_metrics),
        ).write(self.result_path)


def sweep_trial_callback() -> SweepTrialCallback | None:
    """The callback for a process a sweep started (its environment says so), else None."""
    metric = os.environ.get(METRIC_ENV)
    if not metric:
        return None
    trial_id = os.environ.get(TRIAL_ID_ENV)
    pruner = os.environ.get(PRUNER_ENV)
    return SweepTrialCallback(
        metric=metric,
        result_path=os.environ.get(RESULT_ENV),
        storage=os.environ.get(STORAGE_ENV),
        study_name=os.environ.get(STUDY_ENV),
        trial_id=int(trial_id) if trial_id else None,
        pruner_settings=json.loads(pruner) if pruner else None,
    )


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)
