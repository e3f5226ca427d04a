"""A checkpoint back as a task on the CPU, with the run's DataModule (not set up) when its
config is known: what ``litlab export`` starts from."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import instantiate_module
from lightning.pytorch.utilities.model_helpers import is_overridden

from litlab.app.cli_errors import find_litlab_error
from litlab.core.checkpoints.checks import check_config_classes, read_checkpoint
from litlab.core.checkpoints.class_import import import_class
from litlab.core.checkpoints.run_lookup import run_config_file
from litlab.core.checkpoints.upgrade import upgrade_config
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedCheckpoint:
    task: LightningModule
    datamodule: LightningDataModule | None
    config_file: Path | None


def load_checkpoint(
    checkpoint: str | os.PathLike[str], config_file: str | os.PathLike[str] | None = None
) -> LoadedCheckpoint:
    """The task saved in ``checkpoint``, in eval mode on the CPU. Loading a checkpoint runs
    the code it names: load only checkpoints you trust.

    The task class and its arguments come from the checkpoint's hyperparameters (a ``litlab
    fit`` checkpoint names its class); a checkpoint that does not (saved from Python) is
    built from the ``model`` section of ``config_file``. The DataModule comes from the
    ``data`` section of ``config_file``, default the run's ``config.yaml``; it is only
    constructed (no data is read), and left out with a warning when that fails.
    """
    path = Path(checkpoint)
    state = _read(path)
    config_path = Path(config_file) if config_file is not None else run_config_file(path)
    config = _read_config(config_path) if config_path is not None else {}
    if config_file is not None:
        check_config_classes(path, state, config.get("model"), str(config_path))
    hparams = dict(state.get("hyper_parameters") or {})
    if "_class_path" in hparams:
        hparams.pop("_instantiator", None)
        task_class = import_class(hparams["_class_path"], path, LightningModule)
        task = _instantiate(task_class, hparams, f"the task saved in {path}")
    elif isinstance(config.get("model"), dict) and "class_path" in config["model"]:
        task_class = import_class(config["model"]["class_path"], config_path, LightningModule)
        task = _instantiate(task_class, _flat(config["model"]), f"the model of {config_path}")
    else:
        raise LitlabError(
            f"{path} does not name its task class (no '_class_path' in its hyperparameters: "
            f"it was not saved by litlab fit), and no config names it. Give the config it "
            f"was trained with: litlab export --ckpt {path} -c CONFIG."
        )
    _restore(task, state, path)
    task.to("cpu").eval()
    datamodule = _datamodule(config, config_path)
    return LoadedCheckpoint(task=task, datamodule=datamodule, config_file=config_path)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise LitlabError(
            f"checkpoint not found: {path}. Give --ckpt a .ckpt file, or 'best'/'last' for "
            f"the newest run of the experiment."
        )
    # Not weights_only: litlab checkpoints hold numpy arrays (the RNG states of resumable
    # runs), which torch's weights-only unpickler refuses. Export only checkpoints you trust.
    return read_checkpoint(path, weights_only=False)


def _restore(task: LightningModule, state: dict[str, Any], path: Path) -> None:
    """What ``LightningModule.load_from_checkpoint`` does once the task is built."""
    if is_overridden("configure_model", task):
        task.configure_model()
    task.on_load_checkpoint(state)
    try:
        task.load_state_dict(state["state_dict"], strict=task.strict_loading)
    except RuntimeError as err:
        raise LitlabError(
            f"the weights in {path} do not fit {type(task).__name__} as configured "
            f"({str(err).splitlines()[0]}). Give the config the checkpoint was trained with."
        ) from err


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise LitlabError(f"config file not found: {path}. Check the path given to -c/--config.")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise LitlabError(f"{path} is not a litlab config (a YAML mapping with model and data).")
    # A run config of an earlier litlab names the task's network `model` and classes that
    # have moved since.
    config, changes = upgrade_config(config)
    if changes:
        log.info(
            "%s was written by an earlier litlab; read as this one writes it (%s)",
            path, "; ".join(changes),
        )  # fmt: skip
    return config


def _flat(section: dict[str, Any]) -> dict[str, Any]:
    """A config section ``{class_path, init_args}`` as Lightning saves hyperparameters."""
    return {"_class_path": section["class_path"], **(section.get("init_args") or {})}


def _datamodule(config: dict[str, Any], config_path: Path | None) -> LightningDataModule | None:
    data = config.get("data")
    if not (isinstance(data, dict) and "class_path" in data):
        return None
    try:
        data_class = import_class(data["class_path"], config_path, LightningDataModule)
        return _instantiate(data_class, _flat(data), f"the data of {config_path}")
    except LitlabError as err:
        log.warning("Exporting without the run's DataModule: %s", err)
        return None


def _instantiate(cls: type, arguments: dict[str, Any], what: str) -> Any:
    try:
        return instantiate_module(cls, arguments)
    except Exception as err:
        if (user_error := find_litlab_error(err)) is not None:
            raise user_error from err
        raise LitlabError(f"cannot build {what} ({cls.__name__}): {err}") from err
