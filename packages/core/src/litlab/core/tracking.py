"""Weights & Biases tracking, the default logger of every litlab run.

With a W&B login (``wandb login`` or ``WANDB_API_KEY``) runs go online. Without one the logger
switches itself to offline mode, says so once, and prints the ``wandb sync`` command that uploads
the run when it ends. ``WANDB_MODE`` (online, offline, disabled) and the other ``WANDB_*``
variables are respected as W&B documents them.
"""

from __future__ import annotations

import logging
import netrc
import os
import shutil
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

DEFAULT_WANDB_HOST = "https://api.wandb.ai"
OFFLINE_MODES = ("offline", "dryrun")
CONFIG_FILE_NAME = "litlab-config.yaml"


def wandb_logged_in() -> bool:
    """Whether W&B has credentials: an API key in the environment or in the netrc file."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).netloc
    netrc_path = os.environ.get("NETRC") or Path.home() / ".netrc"
    try:
        return netrc.netrc(netrc_path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(offline: bool | None) -> str:
    """``offline=True/False`` forces the mode; ``None`` follows ``WANDB_MODE``, then the login."""
    if offline is not None:
        return "offline" if offline else "online"
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_logged_in() else "offline"


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
        log_model: bool | Literal["all"] = False,
        **kwargs: Any,
    ) -> None:
        """Args:
        project: W&B project (``WANDB_PROJECT`` wins when set).
        name: Run name; litlab sets it to the experiment name.
        save_dir: Folder for the W&B run files; litlab sets it to the run folder.
        id: Run id; litlab sets it to the run folder's id.
        entity: W&B user or team (``WANDB_ENTITY`` wins when set).
        group: Group the run belongs to.
        tags: Tags shown on the run.
        job_type: The kind of run (litlab sets fit, validate, test or predict).
        offline: ``True``/``False`` forces offline/online; ``None`` follows ``WANDB_MODE`` and
            otherwise goes offline only when there is no W&B login.
        log_model: Upload checkpoints as W&B artifacts (online runs only).
        **kwargs: Passed on to ``wandb.init``.
        """
        mode = resolve_wandb_mode(offline)
        if mode in OFFLINE_MODES and log_model:
            log_model = False
        if offline is None and "WANDB_MODE" not in os.environ and mode == "offline":
            self._say_offline()
        project = os.environ.get("WANDB_PROJECT", project)
        entity = os.environ.get("WANDB_ENTITY", entity)
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

    @staticmethod
    @rank_zero_only
    def _say_offline() -> None:
        log.info(
            "W&B: no login found (wandb login, or WANDB_API_KEY), so this run is logged offline. "
            "Its sync command is printed when it ends."
        )

    def bind_run(self, save_dir: str, name: str, run_id: str, job_type: str | None) -> None:
        """Fill in the run folder, name, id and job type the config left unset.

        Called by ``litlab`` before the W&B run starts.
        """
        given = {"dir": save_dir, "name": name, "id": run_id, "job_type": job_type}
        for key, value in given.items():
            if self._wandb_init.get(key) in (None, "."):
                self._wandb_init[key] = value
        self._save_dir = self._wandb_init["dir"]
        self._name = self._wandb_init["name"]
        self._id = self._wandb_init["id"]

    @rank_zero_only
    def log_config(self, config: dict[str, Any], config_file: Path) -> None:
        """Put the resolved config in the run, nested, and its YAML file among the run's files."""
        run = self.experiment
        run.config.update(config, allow_val_change=True)
        if getattr(run, "dir", None) and config_file.is_file():
            # W&B keeps its own config.yaml in the run's files, hence another name.
            uploaded = Path(run.dir) / CONFIG_FILE_NAME
            shutil.copyfile(config_file, uploaded)
            run.save(str(uploaded), base_path=run.dir, policy="now")

    @rank_zero_only
    def log_confusion_matrix(
        self, key: str, targets: list[int], predictions: list[int], class_names: list[str]
    ) -> None:
        """A W&B confusion-matrix chart of integer targets against predictions."""
        import wandb

        chart = wandb.plot.confusion_matrix(
            y_true=targets, preds=predictions, class_names=class_names, title=key
        )
        self.experiment.log({key: chart})

    @rank_zero_only
    def finish(self, exit_code: int = 0) -> None:
        """End the W&B run; for an offline run, print the command that uploads it."""
        run, self._experiment = self._experiment, None
        if run is None or not hasattr(run, "finish"):
            return
        settings = getattr(run, "settings", None)
        offline = settings is not None and settings.mode in OFFLINE_MODES
        run.finish(exit_code=exit_code)
        if offline:
            log.info("W&B run saved offline. Upload it with:\n  wandb sync %s", settings.sync_dir)
