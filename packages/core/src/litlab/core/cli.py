"""The ``litlab`` command: LightningCLI with the defaults every litlab run gets.

``litlab fit|validate|test|predict -c experiments/<domain>/<task>.yaml [--model.lr 3e-4 ...]``

Defaults, each replaced by what the config says: seed 42, the W&B logger, ``best.ckpt`` (on
the task's monitored metric) and ``last.ckpt`` (the latest state), the wall time and peak
memory of each stage (``ResourceReport``), a LearningRateMonitor
and Lightning's progress bar. Every run gets its own folder (see :mod:`litlab.core.runs`) holding
the resolved config, the checkpoints and the W&B files; the resolved config reaches W&B once,
nested, and as a file. ``--ckpt_path best|last`` picks that checkpoint of the newest run of the
experiment.
"""

from __future__ import annotations

import logging
import os
import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from litlab.core.callbacks.last_checkpoint import LastCheckpoint
from litlab.core.callbacks.resource_report import ResourceReport
from litlab.core.cli_errors import describe_parse_error, find_litlab_error
from litlab.core.errors import LitlabError
from litlab.core.runs import (
    CHECKPOINT_ALIASES,
    RUN_DIR_ENV_VAR,
    find_checkpoint,
    new_run_dir,
    new_run_id,
)
from litlab.core.tracking import WandbLogger

log = logging.getLogger("litlab")

DEFAULT_SEED = 42
DEFAULT_LOGGER = {"class_path": "litlab.core.tracking.WandbLogger"}


class SaveRunConfig(SaveConfigCallback):
    """Saves the resolved config in the run folder and sends it to the loggers, once."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The config holds every hyperparameter, nested; Lightning logging the module's own
        # hparams as well would put them in the W&B run twice, once flattened.
        pl_module._log_hyperparams = False
        if trainer.datamodule is not None:
            trainer.datamodule._log_hyperparams = False
        # trainer.log_dir is a collective (it broadcasts), so every rank reads it here;
        # save_config runs on rank zero only.
        self.log_dir = Path(trainer.log_dir or ".")
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config_path = self.log_dir / self.config_filename
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_config(config, config_path)
            else:
                logger.log_hyperparams(config)


class LitlabCLI(LightningCLI):
    """LightningCLI with litlab's run folders, default callbacks and W&B tracking."""

    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=None,
            subclass_mode_model=True,
            save_config_callback=SaveRunConfig,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"logger": DEFAULT_LOGGER},
            seed_everything_default=DEFAULT_SEED,
            auto_configure_optimizers=False,
            args=args,
        )

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # Raise instead of printing usage and exiting, so main() can say what is wrong briefly.
        kwargs.setdefault("exit_on_error", False)
        # Prefix matching would read a misspelt --trainer.max_epoch as --trainer.max_epochs.
        kwargs.setdefault("allow_abbrev", False)
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--experiment",
            type=str | None,
            default=None,
            help="Experiment name: the run folder and W&B run name. Default: the config file's "
            "name, else the model class name.",
        )
        parser.add_argument(
            "--runs_root", type=str, default="runs", help="Folder that holds the run folders."
        )

    # ----- parsing

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        config = self._subconfig()
        if config.get("experiment") is None:
            config.experiment = _default_experiment_name(config)
        ckpt_path = config.get("ckpt_path")
        if ckpt_path in CHECKPOINT_ALIASES:
            config.ckpt_path = str(find_checkpoint(config.runs_root, config.experiment, ckpt_path))
            log.info("Using the %s checkpoint %s", ckpt_path, config.ckpt_path)
        elif ckpt_path is not None and not Path(ckpt_path).is_file():
            raise LitlabError(
                f"checkpoint not found: {ckpt_path}. Give --ckpt_path an existing .ckpt file, "
                f"or 'best'/'last' for the newest run of the experiment."
            )

    def _subconfig(self) -> Namespace:
        subcommand = self.config.get("subcommand")
        return self.config[subcommand] if subcommand else self.config

    # ----- instantiation

    def before_instantiate_classes(self) -> None:
        config = self._subconfig()
        run_dir = os.environ.get(RUN_DIR_ENV_VAR)
        if run_dir is None:
            run_dir = str(new_run_dir(config.runs_root, config.experiment, new_run_id()))
            # Lightning's DDP launcher starts the other ranks as copies of this command; they
            # inherit the environment and so join this run folder.
            os.environ[RUN_DIR_ENV_VAR] = run_dir
        self.run_dir = Path(run_dir)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        # The run folder, name and id go to the instantiated objects, not into the config: a
        # saved config.yaml replayed later must start a new run, not write into this one.
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("default_root_dir") is None:
            kwargs["default_root_dir"] = str(self.run_dir)
        loggers = trainer_config.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, WandbLogger):
                logger.bind_run(
                    save_dir=str(self.run_dir),
                    name=self._subconfig().experiment,
                    run_id=self.run_dir.name.rsplit("-", 1)[-1],
                    job_type=self.subcommand,
                )
        configured = list(trainer_config.get("callbacks") or [])
        kwargs["callbacks"] = configured + self._default_callbacks(trainer_config, configured)
        return super().instantiate_trainer(**kwargs)

    def _default_callbacks(
        self, trainer_config: dict[str, Any], configured: list[Callback]
    ) -> list[Callback]:
        callbacks: list[Callback] = []
        has_checkpoint = any(isinstance(c, ModelCheckpoint) for c in configured)
        # A dry run writes nothing (Lightning 2.6 would still save last.ckpt at train end,
        # which `--ckpt_path last` would then pick up).
        wants_checkpoint = trainer_config.get("enable_checkpointing") is not False
        if wants_checkpoint and not has_checkpoint and not trainer_config.get("fast_dev_run"):
            monitor = getattr(self.model, "monitor", None)
            if monitor:
                callbacks.append(
                    ModelCheckpoint(
                        dirpath=self.run_dir / "checkpoints",
                        filename="best",
                        monitor=monitor,
                        mode=getattr(self.model, "monitor_mode", "min"),
                        save_top_k=1,
                        auto_insert_metric_name=False,
                    )
                )
            callbacks.append(LastCheckpoint(self.run_dir / "checkpoints"))
        if not any(isinstance(c, ResourceReport) for c in configured):
            callbacks.append(ResourceReport())
        has_logger = trainer_config.get("logger") not in (None, False, [])
        if has_logger and not any(isinstance(c, LearningRateMonitor) for c in configured):
            callbacks.append(LearningRateMonitor())
        return callbacks

    # ----- running

    def _run_subcommand(self, subcommand: str) -> None:
        # LightningCLI runs the subcommand inside __init__, so this is the one place that sees
        # both its end and its failure: the W&B run is closed (and its sync command printed)
        # either way, and nothing of a crashed run is lost.
        exit_code = 1
        try:
            super()._run_subcommand(subcommand)
            exit_code = 0
        finally:
            for logger in self.trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.finish(exit_code=exit_code)


def _default_experiment_name(config: Namespace) -> str:
    config_files = config.get("config") or []
    if config_files:
        return Path(str(config_files[0])).stem
    model = config.get("model")
    class_path = model.get("class_path") if isinstance(model, Namespace) else None
    return class_path.rsplit(".", 1)[-1].lower() if class_path else "run"


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("litlab: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``litlab`` console script."""
    _configure_logging()
    argv = sys.argv[1:] if args is None else args
    subcommand = next((a for a in argv if a in LightningCLI.subcommands()), None)
    try:
        LitlabCLI(args=args)
    except ArgumentError as err:
        sys.exit(f"litlab: error: {describe_parse_error(str(err), subcommand)}")
    except Exception as err:
        if (user_error := find_litlab_error(err)) is None:
            raise
        sys.exit(f"litlab: error: {user_error}")
    finally:
        os.environ.pop(RUN_DIR_ENV_VAR, None)
