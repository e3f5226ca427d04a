"""Every use litlab makes of a private name of Lightning, in one place.

Lightning offers no public way to do what each function here does; each says what it reads or
writes and why litlab needs it. Nothing else in litlab touches a private Lightning name (a
name starting with ``_``): code that needs one calls these.

The names are those of Lightning 2.6. ``litlab-core`` requires ``lightning<`` :data:`CHECKED_BELOW`,
and ``tests/core/test_lightning_internals.py`` checks every name below against the installed
Lightning, so a release that moves one fails that test instead of a run. Raising the bound means
running that test against the new release and raising :data:`CHECKED_BELOW` with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

if TYPE_CHECKING:
    from lightning.pytorch import LightningDataModule, LightningModule, Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
    from lightning.pytorch.loggers import WandbLogger
    from torch import nn

# The first Lightning release these names are not checked against (the upper bound on
# ``lightning`` in packages/core/pyproject.toml; the test holds the two equal).
CHECKED_BELOW = "2.7"


# ----- LightningCLI


def cli_given_hyperparameters() -> dict[str, Any] | None:
    """The hyperparameters LightningCLI is building a module from (its parsed config), while it
    instantiates one; None outside it. ``save_hyperparameters`` reads the same context variable
    (``hparams_mixin._given_hyperparameters``) to save the config instead of the arguments."""
    return _given_hyperparameters.get()


# ----- LightningModule and LightningDataModule


def skip_hyperparameter_logging(owner: LightningModule | LightningDataModule) -> None:
    """Keep the trainer from sending ``owner``'s hyperparameters to the loggers at the start of a
    run: the flag ``save_hyperparameters(logger=False)`` sets (``_log_hyperparams``), set after
    the module was built, by whoever logs the whole config instead."""
    owner._log_hyperparams = False


# ----- Trainer


def stop_after_this_step(trainer: Trainer) -> None:
    """What Lightning's own SIGTERM handler does (``trainer._signal_connector.received_sigterm``,
    read through the public ``trainer.received_sigterm``): training stops after this step and its
    validation, if one is due, and raises ``SIGTERMException`` through ``on_exception``.
    ``trainer.should_stop`` stops too, but without the exception that tells a preempted run."""
    trainer._signal_connector.received_sigterm = True


def shards_data(trainer: Trainer) -> bool:
    """``Trainer(use_distributed_sampler=...)``, which the trainer keeps only on its accelerator
    connector (``trainer._accelerator_connector``). True for a stand-in trainer without one."""
    connector = getattr(trainer, "_accelerator_connector", None)
    return bool(getattr(connector, "use_distributed_sampler", True))


def epoch_results(trainer: Trainer) -> dict[str, Any]:
    """The training loop's accumulators of what ``self.log(..., on_epoch=True)`` logged this
    epoch, by Lightning's key (``trainer.fit_loop.epoch_loop._results``; each a ``_ResultMetric``
    with ``is_tensor``, ``meta``, ``value`` and ``cumulated_batch_size``): a resumed run adds the
    sums of the batches before its checkpoint to them, so its epoch means are those of a run
    that never stopped."""
    return dict(trainer.fit_loop.epoch_loop._results.items())


# ----- callbacks


def save_now(callback: ModelCheckpoint, trainer: Trainer) -> None:
    """What ``ModelCheckpoint`` does at the end of a validation: save a checkpoint unless it
    should not now (not fitting, a sanity check, a fast dev run, or saved at this step already;
    ``_should_skip_saving_checkpoint``), through its top-k bookkeeping (``_save_topk_checkpoint``
    with ``_monitor_candidates``), so its paths and the loggers' ``after_save_checkpoint`` follow.
    Lightning's public ``on_train_end`` saves only ``save_last``'s extra copy."""
    if not callback._should_skip_saving_checkpoint(trainer):
        callback._save_topk_checkpoint(trainer, callback._monitor_candidates(trainer))


def averaged_module(callback: WeightAveraging) -> nn.Module | None:
    """The averaged copy of the module a ``WeightAveraging`` callback keeps apart during a fit
    (``callback._average_model.module``); None before its ``setup``."""
    average = callback._average_model
    return None if average is None else average.module


# ----- WandbLogger (litlab.app.tracking's subclass changes when and how the run starts)


def wandb_init_args(logger: WandbLogger) -> dict[str, Any]:
    """The keyword arguments the logger will pass to ``wandb.init`` (``_wandb_init``), live:
    changes made before the run starts reach it."""
    return logger._wandb_init


def set_wandb_run_identity(logger: WandbLogger, save_dir: str, run_id: str) -> None:
    """The folder and id the logger reports (its public ``save_dir``, and ``version`` before its
    run starts) after its ``wandb.init`` arguments changed: ``_save_dir`` and ``_id``, which its
    constructor copies from them."""
    logger._save_dir = save_dir
    logger._id = run_id


def started_wandb_run(logger: WandbLogger) -> Any:
    """The logger's W&B run if it has started, else None (``_experiment``; the public
    ``experiment`` starts it)."""
    return logger._experiment


def forget_wandb_run(logger: WandbLogger) -> Any:
    """The logger's started W&B run (or None), taken from it: the logger starts a new one if it
    is used again."""
    run, logger._experiment = logger._experiment, None
    return run
