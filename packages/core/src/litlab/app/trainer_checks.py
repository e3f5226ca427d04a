"""The trainer's numeric arguments, checked before a run starts.

LightningCLI parses ``trainer.*`` by the Trainer's type hints (``max_epochs: int | None``),
which say nothing of ranges. Lightning checks some values when the Trainer is built
(``max_epochs: -5``, ``limit_train_batches: -1``), after litlab has made the run folder and the
W&B run, and others never: ``accumulate_grad_batches: 0`` divides by zero at the first step,
``check_val_every_n_epoch: 0`` at the end of the first epoch. Lightning has no public
validator to call earlier, so this table restates its rules (Lightning 2.6: ``Trainer``,
``trainer/setup.py``, the fit and epoch loops), and litlab checks the parsed config against it
before it creates anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonargparse import Namespace

from litlab.core.errors import LitlabError


def _at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: value >= low


def _batches(value: float) -> bool:
    # Lightning's _determine_batch_limits: a fraction of the batches, or a count of them.
    if isinstance(value, float):
        return 0 <= value <= 1 or (value > 1 and value.is_integer())
    return value >= 0


def _val_check_interval(value: float) -> bool:
    # A fraction of an epoch, or a number of batches; an interval of 0 never comes round.
    if isinstance(value, float):
        return 0 < value <= 1 or (value > 1 and value.is_integer())
    return value >= 1


def _devices(value: Any) -> bool:
    # A count (-1: all), given as a number or, from the command line, a string; "auto",
    # "0,1" and [0, 1] name devices, and [] names none.
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            return True
        value = int(value)
    return value == -1 or value >= 1


_BATCH_RANGE = "must be a fraction in [0, 1] or a number of batches >= 0"

# trainer key: (whether a number is a valid value, the range as the message says it).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_epochs": (_at_least(-1), "must be >= 0, or -1 for no limit"),
    "min_epochs": (_at_least(0), "must be >= 0"),
    "max_steps": (_at_least(-1), "must be >= 0, or -1 for no limit"),
    "min_steps": (_at_least(0), "must be >= 0"),
    "devices": (_devices, "must be >= 1, or -1 for all devices"),
    "num_nodes": (_at_least(1), "must be >= 1"),
    "fast_dev_run": (_at_least(0), "must be a number of batches >= 0, or true/false"),
    "limit_train_batches": (_batches, _BATCH_RANGE),
    "limit_val_batches": (_batches, _BATCH_RANGE),
    "limit_test_batches": (_batches, _BATCH_RANGE),
    "limit_predict_batches": (_batches, _BATCH_RANGE),
    "overfit_batches": (_batches, _BATCH_RANGE),
    "val_check_interval": (
        _val_check_interval,
        "must be a fraction of an epoch in (0, 1] or a number of batches >= 1",
    ),
    "check_val_every_n_epoch": (_at_least(1), "must be >= 1, or null to validate by steps"),
    "num_sanity_val_steps": (_at_least(-1), "must be >= 0, or -1 for all batches"),
    "log_every_n_steps": (_at_least(0), "must be >= 1, or 0 not to log"),
    "accumulate_grad_batches": (_at_least(1), "must be >= 1"),
    "gradient_clip_val": (_at_least(0), "must be >= 0"),
    "reload_dataloaders_every_n_epochs": (_at_least(0), "must be >= 0"),
}


def check_trainer_values(trainer_config: Mapping[str, Any] | Namespace) -> None:
    """Raise a :class:`LitlabError` naming the first trainer value out of Lightning's range.

    Only numbers (and ``devices``) are checked: other values (``max_time``, a
    ``val_check_interval`` of ``"00:01:00:00"``) are jsonargparse's and Lightning's to check,
    and ``true``/``false`` count as no numbers here, though Python's bools are ints.
    """
    for key, (valid, allowed) in RULES.items():
        value = trainer_config.get(key)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (is_number or key == "devices") and value is not None and not valid(value):
            raise LitlabError(
                f"invalid value for 'trainer.{key}': {value} is out of range ({allowed})."
            )
