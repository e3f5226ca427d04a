"""Weights & Biases tracking, the default logger of every litlab run.

With a W&B login (``wandb login`` or ``WANDB_API_KEY``) runs go online. Without one the logger
switches itself to offline mode, says so once, and prints the ``wandb sync`` command that uploads
the run when it ends. An online run that cannot start (server unreachable, key refused) falls back
to offline the same way, so W&B never stops a training run. ``WANDB_MODE`` (online, offline,
disabled) and the other ``WANDB_*`` variables are respected as W&B documents them.

Online runs upload their checkpoints as W&B model artifacts when training ends (``log_model``):
``best.ckpt`` with the alias ``best``, ``last.ckpt`` with ``latest`` and ``last``. The git state
W&B records is that of the working directory's repository, not of the run folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor, nn

from litlab.app.run_info import find_git_root
from litlab.app.wandb_login import (
    LOCAL_MODES,
    OFFLINE_MODES,
    resolve_wandb_mode,
)
from litlab.core.callbacks.last_checkpoint import LastCheckpoint
from litlab.core.launch_form import as_launched
from litlab.core.lightning_internals import (
    forget_wandb_run,
    set_wandb_run_identity,
    started_wandb_run,
    wandb_init_args,
)

log = logging.getLogger(__name__)

CONFIG_FILE_NAME = "litlab-config.yaml"


class WandbLogger(LightningWandbLogger):
    """Lightning's WandbLogger that falls back to offline mode when there is no login."""

    def __init__(
        self,
        project: str = "litlab",
        name: str | None = None,
        save_dir: str = ".",
        id: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        job_type: str | None = None,
        offline: bool | None = None,
        log_model: bool | Literal["all"] = True,
        watch: Literal["gradients", "parameters", "all"] | None = None,
        watch_log_freq: int = 100,
        **kwargs: Any,
    ) -> None:
        """Args:
        project: W&B project (``WANDB_PROJECT`` wins when set).
        name: Run name; litlab sets it to the experiment name and the command line's
            overrides (see :mod:`litlab.app.run_labels`).
        save_dir: Folder for the W&B run files; litlab sets it to the run folder.
        id: Run id; litlab sets it to the run folder's id.
        entity: W&B user or team (``WANDB_ENTITY`` wins when set).
        group: Group the run belongs to.
        tags: Tags shown on the run; litlab adds the config's ``tags``, the model's domain
            and the subcommand after them.
        job_type: The kind of run (litlab sets fit, validate, test or predict).
        offline: ``True``/``False`` forces offline/online; ``None`` follows ``WANDB_MODE`` and
            otherwise goes offline only when there is no W&B login.
        log_model: Upload checkpoints as W&B model artifacts (online runs only): ``True``
            uploads each checkpoint callback's files once, when training ends (``best.ckpt``
            aliased ``best``, ``last.ckpt`` aliased ``latest`` and ``last``); ``"all"``
            uploads every checkpoint as it is written; ``False`` uploads none.
        watch: Log histograms of the model's ``gradients``, ``parameters`` or ``all`` of both
            (``wandb.watch``); off when None.
        watch_log_freq: Log the histograms every this many training steps.
        **kwargs: Passed on to ``wandb.init``.
        """
        mode = resolve_wandb_mode(offline)
        if mode in LOCAL_MODES:
            log_model = False
        if offline is None and "WANDB_MODE" not in os.environ and mode == "offline":
            self._say_offline()
        project = os.environ.get("WANDB_PROJECT", project)
        entity = os.environ.get("WANDB_ENTITY", entity)
        # The checkpoint upload is litlab's own (see after_save_checkpoint), kept here.
        self._artifact_name: str | None = kwargs.get("checkpoint_name")
        self._pending_uploads: dict[int, ModelCheckpoint] = {}
        self._uploaded: dict[str, float] = {}
        super().__init__(
            name=name,
            save_dir=save_dir,
            id=id,
            project=project,
            entity=entity,
            group=group,
            tags=tags,
            job_type=job_type,
            log_model=log_model,
            mode=mode,
            **kwargs,
        )
        # Lightning passes anonymous=None, which wandb 0.19+ warns about; it has no effect.
        init_args = wandb_init_args(self)
        if init_args.get("anonymous") is None:
            init_args.pop("anonymous", None)
        # What after_save_checkpoint uploads: set after Lightning's constructor, which keeps the
        # same value under the same name, so this one is litlab's whatever Lightning does.
        self._log_model = log_model
        self._watch = watch
        self._watch_log_freq = watch_log_freq
        self._watched = False

    @staticmethod
    @rank_zero_only
    def _say_offline() -> None:
        log.info(
            "W&B: no login found (wandb login, or WANDB_API_KEY), so this run is logged offline. "
            "Its sync command is printed when it ends."
        )

    def bind_run(
        self,
        save_dir: str,
        name: str,
        run_id: str,
        job_type: str | None,
        tags: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Fill in the run folder, name, id and job type the config left unset, and add tags
        after the configured ones.

        Called by ``litlab`` before the W&B run starts.
        """
        init_args = wandb_init_args(self)
        given = {"dir": save_dir, "name": name, "id": run_id, "job_type": job_type}
        for key, value in given.items():
            if init_args.get(key) in (None, "."):
                init_args[key] = value
        if tags:
            configured = list(init_args.get("tags") or [])
            init_args["tags"] = list(dict.fromkeys([*configured, *tags]))
        set_wandb_run_identity(self, init_args["dir"], init_args["id"])

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The W&B run, started when first used; offline when the online one cannot start.

        Lightning asks for it before the DataModule's ``setup`` only to start it early
        (``_ = logger.experiment``); that bare look gets a stand-in that starts the run on its
        first real use, so a data error is told before W&B prints anything or leaves a run.
        """
        run = started_wandb_run(self)
        return run if run is not None else _StartsOnUse(self)

    def _start(self) -> Any:
        if (run := started_wandb_run(self)) is not None:
            return run
        import wandb

        init_args = wandb_init_args(self)
        init_args["settings"] = _litlab_settings(init_args.get("settings"))
        if init_args.get("dir"):
            # The W&B service process reads the folder from its own working directory, which
            # is not this one after a chdir (several runs in one Python process).
            init_args["dir"] = os.path.abspath(init_args["dir"])
        try:
            return self._announce(super().experiment)
        except wandb.errors.Error as err:
            if init_args.get("mode") in LOCAL_MODES:
                raise
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log.warning(
                "W&B: the online run could not start (%s), so this run is logged offline. "
                "Its sync command is printed when it ends.",
                reason,
            )
            # The W&B service keeps the failed run's id, which the offline run shares.
            wandb.teardown()
            init_args["mode"] = "offline"
            self._log_model = False
            return self._announce(super().experiment)

    @staticmethod
    def _announce(run: Any) -> Any:
        settings = getattr(run, "settings", None)
        if settings is not None and settings.mode not in LOCAL_MODES and run.url:
            log.info("W&B run: %s", run.url)
        return run

    @rank_zero_only
    def log_config(
        self, config: dict[str, Any], config_file: Path, run_info: dict[str, Any] | None = None
    ) -> None:
        """Put the resolved config in the run, nested, and its YAML file among the run's files;
        ``run_info`` (see :mod:`litlab.app.run_info`) goes into the config under ``litlab``."""
        run = self.experiment
        run.config.update(config, allow_val_change=True)
        if run_info is not None:
            run.config.update({"litlab": run_info}, allow_val_change=True)
        # A disabled run (WANDB_MODE=disabled) names a files folder that does not exist.
        run_dir = getattr(run, "dir", None)
        if run_dir and Path(run_dir).is_dir() and config_file.is_file():
            # W&B keeps its own config.yaml in the run's files, hence another name.
            uploaded = Path(run.dir) / CONFIG_FILE_NAME
            shutil.copyfile(config_file, uploaded)
            run.save(str(uploaded), base_path=run.dir, policy="now")

    @rank_zero_only
    def log_graph(self, model: nn.Module, input_array: Tensor | None = None) -> None:
        # Lightning hands the module to every logger when a run starts: the one place a logger
        # sees the model, so `watch` starts here.
        if self._watch is not None and not self._watched:
            self.watch(model, log=self._watch, log_freq=self._watch_log_freq, log_graph=False)
            self._watched = True

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        # As Lightning's: every checkpoint now with "all" (or a callback that keeps them all),
        # else each callback's files once, when training ends.
        upload = self._log_model
        if upload == "all" or (upload is True and checkpoint_callback.save_top_k == -1):
            self._upload_new_checkpoints(checkpoint_callback)
        elif upload is True:
            self._pending_uploads[id(checkpoint_callback)] = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str) -> None:
        # As Lightning's, checkpoints are uploaded only when training succeeded.
        if status != "success" or started_wandb_run(self) is None:
            return
        # W&B gives the alias "latest" to the version logged last, so last.ckpt goes last.
        for callback in sorted(
            self._pending_uploads.values(), key=lambda c: isinstance(c, LastCheckpoint)
        ):
            self._upload_new_checkpoints(callback)

    def _upload_new_checkpoints(self, checkpoint_callback: ModelCheckpoint) -> None:
        # Lightning's own version aliases each callback's best file "best" and "latest", which
        # for LastCheckpoint (a top-1 callback without a metric) would put "best" on last.ckpt.
        import wandb

        for mtime, path, score in _new_checkpoint_files(checkpoint_callback, self._uploaded):
            if isinstance(checkpoint_callback, LastCheckpoint):
                aliases = ["latest", "last"]
            elif path == checkpoint_callback.best_model_path:
                aliases = ["best"]
            elif path == checkpoint_callback.last_model_path:  # save_last=True
                aliases = ["latest", "last"]
            else:
                aliases = []  # another of the top k
            metadata = {
                "score": score.item() if isinstance(score, Tensor) else score,
                "original_filename": Path(path).name,
                "monitor": checkpoint_callback.monitor,
                "mode": checkpoint_callback.mode,
            }
            if not self._artifact_name:
                self._artifact_name = f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._artifact_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self.add_file_policy)
            try:
                self.experiment.log_artifact(artifact, aliases=aliases)
            except wandb.errors.Error as err:
                # The checkpoint is safe on disk; a failed upload must not fail the run.
                log.warning("W&B: could not upload %s as a model artifact: %s", path, err)
                continue
            self._uploaded[path] = mtime

    @rank_zero_only
    def finish(self, exit_code: int = 0, discard: bool = False) -> None:
        """End the W&B run; for an offline run, print the command that uploads it, unless the
        run is to be discarded (``litlab`` deletes a run folder that failed before its first
        step)."""
        run = forget_wandb_run(self)
        if run is None or not hasattr(run, "finish"):
            return
        settings = getattr(run, "settings", None)
        offline = settings is not None and settings.mode in OFFLINE_MODES
        run.finish(exit_code=exit_code)
        if offline and not discard and settings is not None:
            # A resumed run leaves one offline folder per part, all with the run's id.
            parts = Path(settings.sync_dir).parent / f"offline-run-*-{run.id}"
            log.info(
                "W&B run saved offline. Upload it with:\n  %s\n"
                "(%s uploads every offline run under a runs folder)",
                # Unquoted: the shell expands the pattern to every part.
                f"{as_launched('wandb', 'sync')} {parts}",
                as_launched("litlab", "sync", "RUNS_ROOT"),
            )


class _StartsOnUse:
    """Stands for a W&B run not started yet: the first attribute looked up starts it, and the
    stand-in then stays that run."""

    def __init__(self, logger: WandbLogger) -> None:
        object.__setattr__(self, "_logger", logger)
        object.__setattr__(self, "_run", None)

    def _started(self) -> Any:
        if self._run is None:
            object.__setattr__(self, "_run", self._logger._start())
        return self._run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._started(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._started(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._started(), name)


def _new_checkpoint_files(
    callback: ModelCheckpoint, uploaded: dict[str, float]
) -> list[tuple[float, str, Any]]:
    """``(mtime, path, score)`` of the callback's checkpoint files (its last, best and top k)
    that are not in ``uploaded`` (path: mtime) as they are now, oldest first."""
    scores: dict[str, Any] = {}
    if callback.last_model_path:
        scores[callback.last_model_path] = callback.current_score
    if callback.best_model_path:
        scores[callback.best_model_path] = callback.best_model_score
    scores.update(callback.best_k_models)
    files = sorted(
        (Path(path).stat().st_mtime, path, score)
        for path, score in scores.items()
        if Path(path).is_file()
    )
    return [(mtime, path, score) for mtime, path, score in files if uploaded.get(path, -1) < mtime]


def _litlab_settings(settings: Any) -> Any:
    """W&B settings whose git root is the working directory's repository, and whose console
    output is litlab's.

    W&B looks for the repository from the run's ``dir`` (here the run folder, which it finds
    missing and warns about, and which may lie outside the code's repository); without a
    repository its git lookup is switched off instead. W&B's own dozen lines at the start and
    end of a run are left out (``silent``) unless the settings or ``WANDB_SILENT`` /
    ``WANDB_QUIET`` say otherwise: litlab names the run's folder, its page and its sync command.
    """
    import wandb

    if settings is None:
        settings = wandb.Settings()
    elif isinstance(settings, dict):
        settings = wandb.Settings(**settings)
    if not {"git_root", "disable_git"} & settings.model_fields_set:
        root = find_git_root()
        if root is None:
            settings.disable_git = True
        else:
            settings.git_root = root
    chosen = {"silent", "quiet"} & settings.model_fields_set
    if not chosen and not {"WANDB_SILENT", "WANDB_QUIET"} & os.environ.keys():
        settings.silent = True
    return settings
