"""How a sweep talks to its trial processes: environment variables in, a JSON file out.

A trial is an ordinary ``litlab fit`` process. When :data:`METRIC_ENV` is set, the CLI adds
:class:`~litlab.app.sweeps.trial_callback.SweepTrialCallback`, which writes a
:class:`TrialResult` to :data:`RESULT_ENV`'s path and, when the study variables are set too,
reports the metric to the Optuna study after every validation and stops a pruned trial.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

METRIC_ENV = "LITLAB_SWEEP_METRIC"
RESULT_ENV = "LITLAB_SWEEP_RESULT"
STORAGE_ENV = "LITLAB_SWEEP_STORAGE"
STUDY_ENV = "LITLAB_SWEEP_STUDY"
TRIAL_ID_ENV = "LITLAB_SWEEP_TRIAL_ID"
# The pruner's settings (JSON), so the trial builds the same pruner as the sweep.
PRUNER_ENV = "LITLAB_SWEEP_PRUNER"
ALL_ENV = (METRIC_ENV, RESULT_ENV, STORAGE_ENV, STUDY_ENV, TRIAL_ID_ENV, PRUNER_ENV)
RESULT_FILE_NAME = "sweep_trial.json"


@dataclass
class TrialResult:
    """What a trial reports back when training ends.

    ``value`` is the metric's last logged value (W&B sweeps use the last value too), None when
    it was never logged; ``logged_metrics`` are all the metric names the run logged.
    """

    metric: str
    value: float | None
    pruned: bool
    validations: int
    epochs: int
    global_step: int
    logged_metrics: list[str]

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TrialResult | None:
        """The result at ``path``, None when the trial wrote none (it crashed)."""
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None
