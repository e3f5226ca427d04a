"""Checkpoints and run configs of earlier litlab versions, read as this version writes them.

The one owner of what litlab renamed and moved, and of how older files are read anyway:

- :data:`RENAMED_TASK_ARGUMENTS`: a task's constructor argument (and the attribute that holds
  it) that was renamed. Tasks took their network as ``model`` (configs read
  ``model.init_args.model.init_args...``, state_dict keys ``model.*``); they take it as
  ``network`` now (``model.init_args.network...``, ``network.*``).
- :data:`MOVED_MODULES`: modules that moved, so class paths that older configs and
  checkpoints record (``litlab.core.tracking.WandbLogger``) are found where they are now
  (``litlab.app.tracking.WandbLogger``).

:func:`upgrade_checkpoint` changes a checkpoint dict in place (``hyper_parameters``,
``state_dict`` and the copy of it that Lightning's ``WeightAveraging`` keeps);
:func:`upgrade_config` and :func:`upgrade_config_text` return an upgraded copy of a config.
An argument is renamed only for a task class that takes the new name and not the old one, so
other LightningModules keep their own ``model``. Files on disk are never rewritten: readers
upgrade what they read (:func:`~litlab.core.checkpoints.checks.read_checkpoint`,
:meth:`litlab.core.task.Task.on_load_checkpoint` and ``Task.load_from_checkpoint``, the
``litlab`` command's use of a run's ``config.yaml``, ``litlab export``).
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

import torch
import yaml
from torch import nn

from litlab.core.checkpoints.class_import import import_class
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

# Old task argument name -> new one (the attribute and the state_dict prefix follow).
RENAMED_TASK_ARGUMENTS: Mapping[str, str] = {"model": "network"}

# Old module -> the module it is now; the longest matching prefix of a class path applies.
MOVED_MODULES: Mapping[str, str] = {
    # The application left the library (litlab.core -> litlab.app).
    **{
        f"litlab.core.{name}": f"litlab.app.{name}"
        for name in (
            "cli",
            "cli_errors",
            "console",
            "entry_point",
            "hardware_checks",
            "help_cache",
            "run_info",
            "run_labels",
            "runs",
            "sweeps",
            "sync",
            "tracking",
            "trainer_checks",
            "wandb_login",
            "export.checkpoint_loading",
            "export.command",
            "export.exporter",
            "export.formats",
        )
    },
    # The checkpoint helpers became one package.
    "litlab.core.class_paths": "litlab.core.checkpoints.class_import",
    "litlab.core.task_loading": "litlab.core.checkpoints.task_loading",
    "litlab.core.checkpoint_checks": "litlab.core.checkpoints.checks",
}

# Lightning's WeightAveraging keeps the live weights here while state_dict holds the average.
_STATE_DICT_KEYS = ("state_dict", "current_model_state")


def upgrade_class_path(class_path: str) -> str:
    """Where the class that ``class_path`` names is now (``class_path`` if it did not move)."""
    module = class_path
    while "." in module:
        module = module.rpartition(".")[0]
        if module in MOVED_MODULES:
            return MOVED_MODULES[module] + class_path[len(module) :]
    return class_path


def renamed_arguments(class_path: Any) -> dict[str, str]:
    """The renamed arguments (old -> new) that apply to the task class ``class_path`` names:
    those it takes by the new name and not by the old one. None for a class that cannot be
    looked at: one outside litlab that is not imported yet (reading a file imports no code
    of another package) or that fails to import."""
    if not isinstance(class_path, str):
        return {}
    class_path = upgrade_class_path(class_path)
    module = class_path.rpartition(".")[0]
    if not (module.startswith("litlab.") or module in sys.modules):
        return {}
    try:
        parameters = inspect.signature(import_class(class_path, "the checkpoint")).parameters
    except (LitlabError, TypeError, ValueError):
        return {}
    return {
        old: new
        for old, new in RENAMED_TASK_ARGUMENTS.items()
        if new in parameters and old not in parameters
    }


def _module_renames(module: nn.Module) -> dict[str, str]:
    """The renamed arguments that apply to a built task: it holds the new attribute, not the
    old one."""
    return {
        old: new
        for old, new in RENAMED_TASK_ARGUMENTS.items()
        if isinstance(getattr(module, new, None), nn.Module) and not hasattr(module, old)
    }


def upgrade_checkpoint(
    checkpoint: MutableMapping[str, Any], module: nn.Module | None = None
) -> list[str]:
    """Upgrade a checkpoint dict in place; returns what was changed (empty for a current one).

    The task is ``module`` where it is known (the hook of a built task), else the class the
    checkpoint names (litlab's stamp, or LightningCLI's ``_class_path``). Its hyperparameters
    and state_dict keys get the renamed arguments' names, and the class paths in its
    hyperparameters the modules' new places.
    """
    from litlab.core.checkpoints.checks import STAMP_KEY  # checks reads through this module

    changes: list[str] = []
    hparams = checkpoint.get("hyper_parameters")
    stamp = checkpoint.get(STAMP_KEY)
    if isinstance(hparams, MutableMapping):
        upgraded, changes = upgrade_config(dict(hparams), hparams_of="_class_path")
        if changes:
            hparams.clear()
            hparams.update(upgraded)
    if isinstance(stamp, MutableMapping):
        for key in ("task", "network"):
            if isinstance(stamp.get(key), str) and stamp[key] != upgrade_class_path(stamp[key]):
                changes.append(f"{stamp[key]} -> {upgrade_class_path(stamp[key])}")
                stamp[key] = upgrade_class_path(stamp[key])
    if module is not None:
        renames = _module_renames(module)
    else:
        task = (stamp or {}).get("task") if isinstance(stamp, Mapping) else None
        if task is None and isinstance(hparams, Mapping):
            task = hparams.get("_class_path")
        renames = renamed_arguments(task)
    for key in _STATE_DICT_KEYS:
        state = checkpoint.get(key)
        if isinstance(state, MutableMapping):
            changes += _rename_prefixes(state, renames)
    return changes


def _rename_prefixes(state: MutableMapping[str, Any], renames: Mapping[str, str]) -> list[str]:
    changes = []
    for old, new in renames.items():
        if any(str(name).startswith(f"{new}.") for name in state):
            continue
        names = [name for name in state if str(name).startswith(f"{old}.")]
        if not names:
            continue
        # Rebuilt in order: a state_dict's order is its modules' order.
        renamed = {
            (f"{new}.{name[len(old) + 1 :]}" if name in names else name): value
            for name, value in state.items()
        }
        state.clear()
        state.update(renamed)
        changes.append(f"state_dict {old}.* -> {new}.*")
    return changes


def upgrade_config(config: Any, hparams_of: str | None = None) -> tuple[Any, list[str]]:
    """An upgraded copy of a config (a run's ``config.yaml``, a section of it, or a
    checkpoint's hyperparameters), and what was changed.

    Every ``class_path`` gets its module's new place; a task section (``{class_path,
    init_args}``) gets its renamed arguments' names. With ``hparams_of`` (``"_class_path"``),
    ``config`` is itself the flat arguments of the class that key names, as LightningCLI
    saves a task's hyperparameters.
    """
    changes: list[str] = []
    upgraded = _upgrade(config, changes)
    if hparams_of is not None and isinstance(upgraded, dict):
        _rename_arguments(upgraded, upgraded.get(hparams_of), changes, "")
    return upgraded, changes


def _upgrade(value: Any, changes: list[str], where: str = "") -> Any:
    if isinstance(value, list):
        return [_upgrade(item, changes, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, Mapping):
        return value
    result = {
        key: _upgrade(item, changes, f"{where}.{key}" if where else str(key))
        for key, item in value.items()
    }
    for key in ("class_path", "_class_path"):
        old = result.get(key)
        if isinstance(old, str) and (new := upgrade_class_path(old)) != old:
            result[key] = new
            changes.append(f"{old} -> {new}")
    if isinstance(result.get("init_args"), dict):
        prefix = f"{where}.init_args." if where else "init_args."
        _rename_arguments(result["init_args"], result.get("class_path"), changes, prefix)
    return result


def _rename_arguments(
    arguments: dict[str, Any], class_path: Any, changes: list[str], prefix: str
) -> None:
    for old, new in renamed_arguments(class_path).items():
        if old in arguments and new not in arguments:
            # In place of the old key, so a dumped config keeps its order.
            items = [((new if key == old else key), value) for key, value in arguments.items()]
            arguments.clear()
            arguments.update(items)
            changes.append(f"{prefix}{old} -> {prefix}{new}")


def upgrade_config_text(text: str) -> tuple[str, list[str]]:
    """A YAML config's text, upgraded (see :func:`upgrade_config`), and what was changed; the
    same text when nothing was (or when it is not YAML: its reader says what is wrong)."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return text, []
    upgraded, changes = upgrade_config(config)
    if not changes:
        return text, []
    return yaml.safe_dump(upgraded, sort_keys=False), changes


def upgraded_checkpoint_file(
    checkpoint: str | os.PathLike[str] | IO[bytes], weights_only: bool | None = None
) -> IO[bytes] | None:
    """An in-memory copy of the checkpoint file (or open file), upgraded, when it was written by
    an earlier litlab; None for a current checkpoint, a remote one (``s3://``...), and one that
    cannot be read (its loader then says why).

    Lightning's ``load_from_checkpoint`` builds the task from the saved hyperparameters as they
    are (all of them when the constructor takes ``**kwargs``), before any hook could rename
    them, so an old checkpoint is handed to it already upgraded. Only old checkpoints are
    copied; a current one is read memory-mapped, its tensors not loaded.
    """
    try:
        if isinstance(checkpoint, str | os.PathLike):
            if "://" in str(checkpoint):
                return None
            loaded = torch.load(
                checkpoint, map_location="cpu", weights_only=weights_only, mmap=True
            )
        else:
            start = checkpoint.tell()
            try:
                loaded = torch.load(checkpoint, map_location="cpu", weights_only=weights_only)
            finally:
                checkpoint.seek(start)
    except Exception:
        return None
    if not isinstance(loaded, MutableMapping) or not upgrade_checkpoint(loaded):
        return None
    upgraded = io.BytesIO()
    torch.save(loaded, upgraded)
    upgraded.seek(0)
    return upgraded
