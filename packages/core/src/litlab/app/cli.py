"""The ``litlab`` command: LightningCLI with the defaults every litlab run gets.

``litlab fit|validate|test|predict -c experiments/<domain>/<task>.yaml [--model.lr 3e-4 ...]``

Defaults, each replaced by what the config says: seed 42, the W&B logger, ``best.ckpt`` (on
the task's monitored metric) and ``last.ckpt`` (the latest state), the wall time and peak
memory of each stage (``ResourceReport``), a stop at a NaN or infinite training loss
(``NonFiniteLossGuard``), a LearningRateMonitor and Lightning's progress bar. Checkpoints are
written atomically, and a ``--ckpt_path`` is checked against the model before anything runs.
Every run gets its own folder (see :mod:`litlab.app.runs`) holding the resolved config, the
checkpoints and the W&B files; the resolved config reaches W&B once, nested, and as a file.
``--ckpt_path best|last`` picks that checkpoint of the newest run of the experiment.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import (
    LightningArgumentParser,
    LightningCLI,
    SaveConfigCallback,
)
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litlab.app.cli_errors import describe_parse_error, find_litlab_error, renamed_key_hint
from litlab.app.console import ConsoleCLI
from litlab.app.data_links import Stated, add_data_links, drop_skipped_links, record_stated
from litlab.app.entry_point import (
    DESCRIPTION,
    EXTRA_VERBS,
    HelpFormatter,
    configure_logging,
    run_extra_verb,
)
from litlab.app.hardware_checks import check_hardware
from litlab.app.run_info import RUN_INFO_FILE_NAME, collect_run_info, write_run_info
from litlab.app.run_labels import run_name, run_tags
from litlab.app.runs import RUN_DIR_ENV_VAR, relaunch_checkpoint, run_dir_for_command
from litlab.app.sweeps.trial_callback import sweep_trial_callback
from litlab.app.tracking import WandbLogger
from litlab.app.trainer_checks import check_trainer_values
from litlab.core.callbacks.last_checkpoint import LastCheckpoint
from litlab.core.callbacks.non_finite_loss_guard import NonFiniteLossGuard
from litlab.core.callbacks.preemption_checkpoint import PreemptionCheckpoint
from litlab.core.callbacks.resource_report import ResourceReport
from litlab.core.callbacks.resume_state import RUN_KEY, ResumeState
from litlab.core.checkpoint_io import AtomicCheckpointIO, use_atomic_checkpoints
from litlab.core.checkpoints.checks import check_checkpoint, check_hyperparameters, read_checkpoint
from litlab.core.checkpoints.run_lookup import (
    CHECKPOINT_ALIASES,
    RUN_CONFIG_FILE,
    find_checkpoint,
    run_config_file,
    run_dir_of_checkpoint,
)
from litlab.core.checkpoints.upgrade import upgrade_config_text
from litlab.core.errors import LitlabError
from litlab.core.launch_form import as_launched
from litlab.core.lightning_internals import skip_hyperparameter_logging

log = logging.getLogger("litlab")

DEFAULT_SEED = 42
DEFAULT_LOGGER = {"class_path": "litlab.app.tracking.WandbLogger"}


class SaveRunConfig(SaveConfigCallback):
    """Saves the resolved config and the run info in the run folder and sends them to the
    loggers, once."""

    def __init__(self, *args: Any, run_info: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_info = run_info

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The config holds every hyperparameter, nested; Lightning logging the module's own
        # hparams as well would put them in the W&B run twice, once flattened.
        skip_hyperparameter_logging(pl_module)
        datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set by fit, undeclared
        if datamodule is not None:
            skip_hyperparameter_logging(datamodule)
        # trainer.log_dir is a collective (it broadcasts), so every rank reads it here;
        # save_config runs on rank zero only.
        self.log_dir = Path(trainer.log_dir or ".")
        if stage == "fit" and self.config.get("ckpt_path") is not None:
            # What a fit resumed from is not part of the experiment: config.yaml replayed
            # later starts a new run.
            self.config = self.config.clone()
            self.config.ckpt_path = None
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config_path = self.log_dir / self.config_filename
        run_info = self.run_info or collect_run_info(sys.argv, self.log_dir)
        write_run_info(run_info, self.log_dir / RUN_INFO_FILE_NAME)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_config(config, config_path, run_info)
            else:
                logger.log_hyperparams(config)


class LitlabCLI(ConsoleCLI):
    """LightningCLI with litlab's run folders, default callbacks and W&B tracking."""

    # The --ckpt_path file, memory-mapped, from parsing until Lightning loads it.
    checkpoint: dict[str, Any] | None = None
    ckpt_path: str | None = None

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        # What the config states at each data link's target (see litlab.app.data_links).
        self.stated_at_links: dict[str, Stated] = {}
        # The subcommand once it has started (its before_<subcommand> hook has run).
        self.running: str | None = None
        # LightningCLI runs the subcommand inside __init__, so this is the one place that sees
        # both its end and its failure: the W&B run is closed (and its sync command printed)
        # either way, and nothing of a crashed run is lost.
        exit_code = 1
        stopped = False
        try:
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
                run=run,
            )
            exit_code = 0
        except SIGTERMException:
            if self.running is None:
                raise
            # SIGTERM or SIGINT (see PreemptionCheckpoint): exit as killed by it, after the W&B
            # run is closed, with the command that resumes the run.
            stopped = True
        finally:
            if self.running is not None:
                self._end_subcommand(self.running, exit_code, stopped)
        if stopped:
            self._exit_stopped()

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # Raise instead of printing usage and exiting, so main() can say what is wrong briefly.
        kwargs.setdefault("exit_on_error", False)
        kwargs.setdefault("description", DESCRIPTION)
        kwargs.setdefault("formatter_class", HelpFormatter)
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
        parser.add_argument(
            "--tags",
            type=list[str],
            default=[],
            help="W&B tags of the run, beside the model's domain and the subcommand.",
        )
        # What the data knows (num_classes, image shape, vocab_size) reaches the task and its
        # network here, and only here.
        add_data_links(parser, self.stated_at_links)

    # ----- parsing

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # The command line as typed: the run info records it, the W&B run name shows its
        # overrides.
        self.argv = sys.argv[1:] if args is None else list(args) if isinstance(args, list) else []
        # As LightningCLI parses, with the run's config added for a checkpoint given alone.
        if isinstance(args, dict | Namespace):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(upgraded_run_configs(with_run_config(self.argv)))
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
        if config.get("ckpt_path") is not None:
            # The one read of the file, safe (weights_only unless the user says otherwise) and
            # memory-mapped (cheap on a big one): checked against the model before anything
            # runs, then handed to Lightning's load (before_<subcommand>).
            self.checkpoint = read_checkpoint(
                config.ckpt_path, config.get("weights_only"), mmap=True
            )
            check_hyperparameters(config.ckpt_path, self.checkpoint)
            # LightningCLI would read the file again to rebuild the model from its
            # hyperparameters over the config's, which silently tests another model than the
            # config names and drops the user's overrides. The config decides; the checkpoint
            # is checked against what it builds. Restored in before_instantiate_classes.
            self.ckpt_path, config.ckpt_path = config.ckpt_path, None

    def _subconfig(self, config: Namespace | None = None) -> Namespace:
        """The subcommand's part of ``config`` (the parsed config by default)."""
        config = self.config if config is None else config
        subcommand = config.get("subcommand")
        return config[subcommand] if subcommand else config

    # ----- instantiation

    def after_instantiate_classes(self) -> None:
        drop_skipped_links(self.model.hparams, self.stated_at_links)

    def before_instantiate_classes(self) -> None:
        config = self._subconfig()
        record_stated(config, self.stated_at_links)
        # Values Lightning would refuse late, and hardware this machine lacks: before anything
        # is built. The ranks Lightning launches inherit the run folder: only the first warns.
        check_trainer_values(config.trainer)
        check_hardware(config.trainer, warn=RUN_DIR_ENV_VAR not in os.environ)
        if self.ckpt_path is not None:
            config.ckpt_path = self.ckpt_path
        # fit from a checkpoint resumes its run: the run folder it lies in, and its W&B run.
        resuming = self.subcommand == "fit" and config.get("ckpt_path") is not None
        run_dir = os.environ.get(RUN_DIR_ENV_VAR)
        if run_dir is None:
            resumed_dir = run_dir_of_checkpoint(config.ckpt_path) if resuming else None
            run_dir = str(resumed_dir or run_dir_for_command(config.runs_root, config.experiment))
            if self.subcommand == "fit" and not resuming:
                resuming = self._continue_relaunch(config, Path(run_dir))
            # Lightning's DDP launcher starts the other ranks as copies of this command; they
            # inherit the environment and so join this run folder (under torchrun or srun
            # every rank finds the same folder by itself: run_dir_for_command).
            os.environ[RUN_DIR_ENV_VAR] = run_dir
            # Read before the run writes anything, so its own files never make the tree dirty.
            self.save_config_kwargs["run_info"] = collect_run_info(["litlab", *self.argv], run_dir)
        self.run_dir = Path(run_dir)
        saved = self.checkpoint if resuming and self.checkpoint is not None else {}
        self.resumed_run = dict(saved.get(RUN_KEY) or {})

    def _continue_relaunch(self, config: Namespace, run_dir: Path) -> bool:
        """A fit started again in its own run folder (a requeued SLURM job) goes on from the
        folder's newest checkpoint instead of training from scratch over it."""
        checkpoint = relaunch_checkpoint(run_dir)
        if checkpoint is None:
            return False
        log.info("Started again in %s: resuming from %s", run_dir, checkpoint)
        config.ckpt_path = str(checkpoint)
        self.checkpoint = read_checkpoint(checkpoint, config.get("weights_only"), mmap=True)
        return True

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        # The run folder, name and id go to the instantiated objects, not into the config: a
        # saved config.yaml replayed later must start a new run, not write into this one.
        trainer_config = self._subconfig(self.config_init).get("trainer") or {}
        if trainer_config.get("default_root_dir") is None:
            kwargs["default_root_dir"] = str(self.run_dir)
        loggers = trainer_config.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, WandbLogger):
                config = self._subconfig()
                logger.bind_run(
                    save_dir=str(self.run_dir),
                    name=self.resumed_run.get("wandb_run_name")
                    or run_name(config.experiment, self.argv),
                    run_id=self.resumed_run.get("wandb_run_id")
                    or self.run_dir.name.rsplit("-", 1)[-1],
                    job_type=self.subcommand,
                    tags=run_tags(
                        config.get("tags") or [], _model_class_path(config), self.subcommand
                    ),
                )
        configured = list(trainer_config.get("callbacks") or [])
        kwargs["callbacks"] = configured + self._default_callbacks(trainer_config, configured)
        trainer = super().instantiate_trainer(**kwargs)
        use_atomic_checkpoints(trainer.strategy)
        return trainer

    def _default_callbacks(
        self, trainer_config: dict[str, Any], configured: list[Callback]
    ) -> list[Callback]:
        callbacks: list[Callback] = []

        def missing(kind: type[Callback]) -> bool:
            # A callback of the same kind in the config replaces the default.
            return not any(isinstance(c, kind) for c in configured)

        # A dry run writes nothing (Lightning 2.6 would still save last.ckpt at train end,
        # which `--ckpt_path last` would then pick up).
        wants_checkpoint = trainer_config.get("enable_checkpointing") is not False and not (
            trainer_config.get("fast_dev_run")
        )
        if wants_checkpoint and missing(ModelCheckpoint):
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
        # SIGTERM and Ctrl+C stop at the end of a step with last.ckpt, whatever else saves.
        if wants_checkpoint and missing(PreemptionCheckpoint):
            callbacks.append(PreemptionCheckpoint(self.run_dir / "checkpoints"))
        for kind in (ResumeState, ResourceReport, NonFiniteLossGuard):
            if missing(kind):
                callbacks.append(kind())
        has_logger = trainer_config.get("logger") not in (None, False, [])
        if has_logger and missing(LearningRateMonitor):
            callbacks.append(LearningRateMonitor())
        # A trial of `litlab sweep` reports its metric to the sweep (set by its environment).
        if (sweep_trial := sweep_trial_callback()) is not None:
            callbacks.append(sweep_trial)
        return callbacks

    # ----- running

    def before_fit(self) -> None:
        self._start_subcommand("fit")

    def before_validate(self) -> None:
        self._start_subcommand("validate")
        super().before_validate()

    def before_test(self) -> None:
        self._start_subcommand("test")
        super().before_test()

    def before_predict(self) -> None:
        self._start_subcommand("predict")
        super().before_predict()

    def _start_subcommand(self, subcommand: str) -> None:
        if self.checkpoint is not None:
            # Before any data is read: a bad checkpoint is told in one line, not after setup.
            ckpt_path = self._subconfig().ckpt_path
            check_checkpoint(
                ckpt_path, self.model, self.checkpoint, same_classes=True,
                experiment=self._subconfig().experiment,
            )  # fmt: skip
            checkpoint_io = self.trainer.strategy.checkpoint_io
            if isinstance(checkpoint_io, AtomicCheckpointIO):
                checkpoint_io.hand_over(ckpt_path, self.checkpoint)
            self.checkpoint = None
        # A folder that is there already (a resumed run) is never removed.
        self.new_run = not self.run_dir.exists()
        if self.trainer.is_global_zero:
            log.info("%s run folder: %s", subcommand, self.run_dir)
        self.running = subcommand

    def _end_subcommand(self, subcommand: str, exit_code: int, stopped: bool) -> None:
        # A command that failed before its first step leaves nothing: no folder, no offline
        # W&B run for `litlab sync` to offer.
        discard = (
            exit_code != 0 and not stopped and self.new_run and not self._kept_anything(subcommand)
        )
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.finish(exit_code=exit_code, discard=discard)
        if self.trainer.is_global_zero:
            if discard:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                log.info("%s failed before its first step: nothing was kept", subcommand)
            elif self.run_dir.exists():
                log.info("%s run folder: %s", subcommand, self.run_dir)

    def _kept_anything(self, subcommand: str) -> bool:
        """Whether the command got as far as one step, or wrote a checkpoint."""
        if any(self.run_dir.glob("**/*.ckpt")):
            return True
        if subcommand == "fit":
            return self.trainer.global_step > 0
        loop = getattr(self.trainer, f"{subcommand}_loop", None)
        progress = getattr(getattr(loop, "batch_progress", None), "total", None)
        # Where Lightning moves its progress counters, keep the folder rather than lose a run.
        return progress is None or progress.completed > 0

    def _exit_stopped(self) -> None:
        stopper = next(
            (c for c in self.trainer.callbacks if isinstance(c, PreemptionCheckpoint)),  # type: ignore[attr-defined]  # set by the callback connector, undeclared
            None,
        )
        stop_signal = (stopper and stopper.stop_signal) or signal.SIGTERM
        if stopper is None or stopper.saved_path is None:
            log.info("Stopped by %s; no checkpoint was written.", stop_signal.name)
        elif self.trainer.is_global_zero:
            log.info(
                "Resume this run (the same results as a run that never stopped) with:\n  %s",
                _resume_command(self.argv, self._subconfig(), stopper.saved_path),
            )
        # The shell's code for a process killed by that signal: scripts see it did not finish.
        sys.exit(128 + stop_signal)


def with_run_config(argv: list[str]) -> list[str]:
    """``argv`` with ``-c <run>/config.yaml`` after the subcommand when it gives a checkpoint
    but no config: ``litlab test --ckpt_path runs/<exp>/<run>/checkpoints/best.ckpt`` tests
    that run's model on its data, and any dotted overrides still apply on top."""
    subcommand = next((i for i, arg in enumerate(argv) if arg in LightningCLI.subcommands()), None)
    given = _option_values(argv)
    if subcommand is None or "--ckpt_path" not in given or {"-c", "--config"} & given.keys():
        return argv
    if {"--model", "--model.class_path"} & given.keys():
        return argv  # the model is named on the command line
    checkpoint = given["--ckpt_path"]
    if checkpoint in CHECKPOINT_ALIASES:
        if "--experiment" not in given:
            raise LitlabError(
                f"--ckpt_path {checkpoint} needs to know the experiment: add -c CONFIG or "
                f"--experiment NAME, or give the checkpoint's path."
            )
        checkpoint = str(
            find_checkpoint(given.get("--runs_root", "runs"), given["--experiment"], checkpoint)
        )
    elif not Path(checkpoint).is_file():
        return argv  # parse_arguments names the missing file
    config_file = run_config_file(checkpoint)
    if config_file is None:
        raise LitlabError(
            f"{checkpoint} is not in a litlab run folder (<run>/checkpoints/ beside "
            f"<run>/config.yaml), so the config it was trained with is unknown: give it with -c."
        )
    log.info("Using the config of the checkpoint's run: %s", config_file)
    at = subcommand + 1
    return [*argv[:at], "-c", str(config_file), *argv[at:]]


def upgraded_run_configs(argv: list[str]) -> list[str]:
    """``argv`` with each ``-c`` of a run folder's ``config.yaml`` written by an earlier litlab
    (renamed keys, moved classes; see :mod:`litlab.core.checkpoints.upgrade`) given as its
    upgraded text instead of its path (jsonargparse's ``-c`` takes a YAML string too). The file
    stays as it is. Only run configs: they name their experiment, which an experiment YAML
    takes from its file name."""
    upgraded = list(argv)
    for i, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if option not in ("-c", "--config"):
            continue
        if not equals:
            if i + 1 >= len(argv):
                break
            value = argv[i + 1]
        if not _is_run_config(value):
            continue
        text = _upgraded_config_text(Path(value))
        if equals:
            upgraded[i] = f"{option}={text}"
        else:
            upgraded[i + 1] = text
    return upgraded


def _is_run_config(path: str) -> bool:
    """A run folder's config: ``<run>/config.yaml`` beside ``<run>/checkpoints/``."""
    config = Path(path)
    return (
        config.name == RUN_CONFIG_FILE
        and config.is_file()
        and (config.parent / "checkpoints").is_dir()
    )


def _upgraded_config_text(config_file: Path) -> str:
    """The path of a current config; the upgraded text of an earlier litlab's."""
    text, changes = upgrade_config_text(config_file.read_text())
    if not changes:
        return str(config_file)
    log.info(
        "%s was written by an earlier litlab; read as this one writes it (%s)",
        config_file, "; ".join(changes),
    )  # fmt: skip
    return text


def _option_values(argv: list[str]) -> dict[str, str]:
    """The ``--key value`` and ``--key=value`` options of a command line (the last of each)."""
    values: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            key, equals, value = arg.partition("=")
            if equals:
                values[key] = value
            else:
                values[key] = argv[i + 1] if i + 1 < len(argv) else ""
    return values


def _default_experiment_name(config: Namespace) -> str:
    config_files = config.get("config") or []
    if config_files:
        return Path(str(config_files[0])).stem
    class_path = _model_class_path(config)
    return class_path.rsplit(".", 1)[-1].lower() if class_path else "run"


def _resume_command(argv: list[str], config: Namespace, checkpoint: Path) -> str:
    """The command line that was run with ``--ckpt_path last`` instead of its own, or with the
    checkpoint's path where ``last`` would find another run's."""
    args, skip_value = [], False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg == "--ckpt_path":
            skip_value = True
        elif not arg.startswith("--ckpt_path="):
            args.append(arg)
    try:
        newest = find_checkpoint(config.runs_root, config.experiment, "last")
    except LitlabError:
        newest = None
    same = newest is not None and newest.resolve() == checkpoint.resolve()
    return as_launched("litlab", *args, "--ckpt_path", "last" if same else str(checkpoint))


def _model_class_path(config: Namespace) -> str | None:
    model = config.get("model")
    return model.get("class_path") if isinstance(model, Namespace) else None


def main(args: list[str] | None = None) -> None:
    """The ``litlab`` command (see :func:`litlab.app.entry_point.main`): LightningCLI's verbs
    run here, litlab's own are handed to their modules."""
    configure_logging()
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] in EXTRA_VERBS:
        run_extra_verb(argv[0], argv[1:])
        return
    subcommand = next((a for a in argv if a in LightningCLI.subcommands()), None)
    try:
        LitlabCLI(args=args)
    except ArgumentError as err:
        message = describe_parse_error(str(err), subcommand)
        sys.exit(f"litlab: error: {message}{renamed_key_hint(message, argv)}")
    except Exception as err:
        if (user_error := find_litlab_error(err)) is None:
            raise
        sys.exit(f"litlab: error: {user_error}")
    finally:
        os.environ.pop(RUN_DIR_ENV_VAR, None)
