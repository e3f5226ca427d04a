"""What a litlab checkpoint records about its maker, and the checks before one is loaded.

Lightning's own errors for a bad ``--ckpt_path`` are a bare ``OSError: [Errno 22]`` (a
truncated file), a pickle error telling the user to distrust random bytes, or a
``load_state_dict`` traceback listing every key; these checks say instead which file is wrong
and how.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from litlab.core.checkpoints.class_import import import_class
from litlab.core.checkpoints.run_lookup import run_config_file, run_dir_of_checkpoint
from litlab.core.checkpoints.state_dicts import SHOWN_NAMES, state_dict_problems
from litlab.core.checkpoints.upgrade import upgrade_checkpoint
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

# checkpoint[STAMP_KEY] = {"version": litlab-core's version, "task": the task's class path,
# "network": its network's class path or None}
STAMP_KEY = "litlab"


class CheckpointError(LitlabError):
    """A checkpoint file that cannot be read, or that does not fit the model."""


@functools.cache
def litlab_version() -> str:
    """The installed litlab-core version ("unknown" when running from a bare source tree)."""
    try:
        return importlib.metadata.version("litlab-core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def stamp_checkpoint(checkpoint: dict[str, Any], module: nn.Module) -> None:
    """Record the litlab-core version, the task class and its network's class (``module.network``,
    where it has one) in ``checkpoint``."""
    task, network = _classes(module)
    checkpoint[STAMP_KEY] = {"version": litlab_version(), "task": task, "network": network}


def read_checkpoint(
    path: str | os.PathLike[str],
    weights_only: bool | None = None,
    map_location: Any = "cpu",
    mmap: bool = False,
) -> dict[str, Any]:
    """``torch.load`` of a Lightning checkpoint, or a :class:`CheckpointError` that names the
    file and says why it cannot be used. A checkpoint of an earlier litlab version comes back
    as this version writes them (:func:`~litlab.core.checkpoints.upgrade.upgrade_checkpoint`;
    the file is left as it is).

    Args:
        path: The checkpoint file.
        weights_only: As for ``torch.load`` (None: torch's default, True since torch 2.6).
        map_location: As for ``torch.load``.
        mmap: Map the tensors' storage instead of reading it (a cheap look at a big file).
    """
    path = Path(path)
    if not path.is_file():
        # As Lightning's own loader says it (some of its callers look for this type).
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    # A save or copy that stopped early lacks the zip archive's directory, which is at the end.
    is_archive = zipfile.is_zipfile(path)
    try:
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=weights_only, mmap=mmap and is_archive
        )
    except pickle.UnpicklingError as err:
        if is_archive and weights_only is not False and "Weights only load failed" in str(err):
            reason = next(
                (line.strip() for line in str(err).splitlines() if "Unsupported" in line),
                str(err).splitlines()[0],
            )
            raise CheckpointError(
                f"checkpoint {path} holds Python objects besides tensors, which loading with "
                f"weights_only refuses ({reason}). If you trust the file, add --weights_only false."
            ) from err
        raise _corrupt(path, is_archive, err) from err
    except Exception as err:
        raise _corrupt(path, is_archive, err) from err
    # A dict: upgrade_checkpoint changes it in place.
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        holds = (
            f"its keys: {', '.join(sorted(map(str, checkpoint))[:8])}"
            if isinstance(checkpoint, Mapping)
            else f"it holds a {type(checkpoint).__name__}"
        )
        raise CheckpointError(
            f"checkpoint {path} is not a Lightning checkpoint: it has no state_dict ({holds}). "
            f"Give --ckpt_path a .ckpt file that Lightning wrote."
        )
    if changes := upgrade_checkpoint(checkpoint):
        log.info(
            "checkpoint %s was written by an earlier litlab; read as this one writes it (%s)",
            path, "; ".join(changes),
        )  # fmt: skip
    return checkpoint


def _corrupt(path: Path, is_archive: bool, error: Exception) -> CheckpointError:
    size = path.stat().st_size
    if size == 0:
        reason = "the file is empty"
    elif not is_archive:
        reason = (
            f"not a complete checkpoint archive ({size} bytes; a save or a copy that "
            f"stopped early, or not a checkpoint at all)"
        )
    else:
        first_line = (str(error).strip().splitlines() or [""])[0]
        reason = f"{type(error).__name__}: {first_line[:200]}"
    others = [
        other
        for other in (path.with_name("best.ckpt"), path.with_name("last.ckpt"))
        if other != path and other.is_file()
    ]
    instead = f"e.g. {others[0]}" if others else "e.g. the run's best.ckpt"
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated: {reason}. Use another checkpoint, {instead}."
    )


def check_hyperparameters(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> None:
    """Check that the classes named in the checkpoint's hyperparameters exist and take those
    arguments.

    LightningCLI rebuilds the model from a checkpoint's hyperparameters (``_class_path`` and
    the saved arguments, over the config's). Those of another litlab version can name a class
    that moved or an argument that was renamed, which jsonargparse reports as a misspelt key of
    the user's config, or as a TypeError.

    Args:
        path: The checkpoint file, for the message.
        checkpoint: Its contents (see :func:`read_checkpoint`).
    """
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or "_class_path" not in hparams:
        return
    arguments = {k: v for k, v in hparams.items() if k not in ("_class_path", "_instantiator")}
    problems = _arguments_not_taken(hparams["_class_path"], arguments, prefix="")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} was made by a model this litlab cannot rebuild: "
            f"{'; '.join(problems[:SHOWN_NAMES])}{_version_note(checkpoint)}. Use the litlab "
            f"version (and packages) that wrote it, or give --ckpt_path a checkpoint of this one."
        )


def _arguments_not_taken(class_path: str, arguments: Mapping[str, Any], prefix: str) -> list[str]:
    try:
        cls = import_class(class_path, "the checkpoint")
    except LitlabError as err:
        cause = err.__cause__
        return [f"{prefix}{class_path} cannot be imported ({type(cause).__name__}: {cause})"]
    taken = _init_arguments(cls)
    problems = [
        f"{cls.__name__} takes no argument {prefix}{key}"
        for key in arguments
        if taken is not None and key not in taken
    ]
    for key, value in arguments.items():
        if isinstance(value, Mapping) and isinstance(value.get("class_path"), str):
            nested = value.get("init_args") or {}
            problems += _arguments_not_taken(value["class_path"], nested, f"{prefix}{key}.")
    return problems


def _init_arguments(cls: type) -> set[str] | None:
    """The names ``cls(...)`` takes, following ``**kwargs`` that an ``__init__`` hands on to its
    base class's (as jsonargparse does for the CLI: tasks forward Task's optimizer arguments
    so); None when any name may be taken."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        try:
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind in named and p.name != "self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return names
    return None


def _version_note(checkpoint: Mapping[str, Any]) -> str:
    saved = (checkpoint.get(STAMP_KEY) or {}).get("version")
    if saved is None or _minor(saved) == _minor(litlab_version()):
        return ""
    return f" (it was written by litlab-core {saved}, this is {litlab_version()})"


def check_checkpoint(
    path: str | os.PathLike[str],
    module: nn.Module,
    checkpoint: Mapping[str, Any] | None = None,
    weights_only: bool | None = None,
    same_classes: bool = False,
    experiment: str | None = None,
) -> None:
    """Check that the checkpoint at ``path`` loads and fits ``module`` before Lightning loads
    it: its state_dict keys and tensor shapes, the task class, the litlab version.

    Keys and shapes that do not fit raise a :class:`CheckpointError` naming the file, a few of
    the keys, and, when they differ, the class and the litlab version that made it. A checkpoint
    of another task class or litlab version whose weights fit is loaded, with a warning. A
    module with ``strict_loading = False`` (adapter-only checkpoints) is checked for shapes
    only, and for the tensors its ``required_state_names()`` names, when it has that method.
    The file is memory-mapped, so even a big one is not read here.

    Args:
        path: The checkpoint file.
        module: The LightningModule the config builds.
        checkpoint: The file's contents when already read; else it is read here.
        weights_only: As the run loads it (``--weights_only``).
        same_classes: Another task or network class is an error even where the weights fit
            (``litlab`` commands: the config names the model to use).
        experiment: The config's experiment, named in the message.
    """
    path = Path(path)
    if checkpoint is None:
        checkpoint = read_checkpoint(path, weights_only=weights_only, mmap=True)
    saved = checkpoint["state_dict"]
    current = module.state_dict()
    strict = getattr(module, "strict_loading", True)
    # A module that loads part of a checkpoint may say which tensors it cannot do without. This
    # is the only check of them under FSDP, which loads the weights before any module hook.
    required = None if strict else getattr(module, "required_state_names", None)
    expected = set(current) if strict else (required() if required else None)
    problems = state_dict_problems(saved, current, expected)
    made_by, built = _maker(checkpoint), _classes(module)
    other_class = made_by is not None and _differ(made_by, built)
    version_note = _version_note(checkpoint)
    if made_by is not None and other_class and (problems or same_classes):
        problems.insert(
            0,
            f"it was made by {_name(made_by)}, the config builds {_name(built)}"
            f"{_experiments(path, experiment)}",
        )
    if problems:
        config = run_config_file(path)
        with_config = f" (-c {config})" if config is not None else ""
        alone = " (--ckpt_path alone, without -c, uses it)" if config is not None else ""
        raise CheckpointError(
            f"checkpoint {path} does not fit the model the config builds: "
            f"{'; '.join(problems)}{version_note}. Load it with the config it was trained "
            f"with{with_config}{alone}, or give --ckpt_path a checkpoint of this model."
        )
    if made_by is not None and other_class:
        log.warning(
            "checkpoint %s was made by %s, the config builds %s; its weights fit, so it is loaded.",
            path, _name(made_by), _name(built),
        )  # fmt: skip
    if version_note:
        log.warning("checkpoint %s fits the model%s.", path, version_note)


def check_config_classes(
    path: str | os.PathLike[str], checkpoint: Mapping[str, Any], model: Any, source: str
) -> None:
    """Raise a :class:`CheckpointError` when the task or network class that the config's
    ``model`` section (``{class_path, init_args: {network: {class_path}}}``) names is not the one
    that made the checkpoint.

    Args:
        path: The checkpoint file, for the message.
        checkpoint: Its contents (see :func:`read_checkpoint`).
        model: The config's model section.
        source: What names the model (the config file), for the message.
    """
    made_by = _maker(checkpoint)
    if made_by is None or not isinstance(model, Mapping) or not model.get("class_path"):
        return
    network = (model.get("init_args") or {}).get("network")
    asked = (
        model["class_path"],
        network.get("class_path") if isinstance(network, Mapping) else None,
    )
    if _differ(made_by, asked):
        raise CheckpointError(
            f"checkpoint {path} holds {_name(made_by)}, {source} asks for {_name(asked)}. Leave "
            f"out -c to use the config it was trained with, or give a checkpoint of that model."
        )


def _experiments(path: Path, experiment: str | None) -> str:
    """`` (a run of X; the config is Y's)``, where the run folders tell."""
    run_dir = run_dir_of_checkpoint(path)
    if run_dir is None or experiment is None or run_dir.parent.name == experiment:
        return ""
    return f" (the checkpoint is a run of {run_dir.parent.name}, the config is {experiment}'s)"


def _maker(checkpoint: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """The class paths of the task and its network that wrote the checkpoint, from litlab's
    stamp or from the hyperparameters LightningCLI saves (``_class_path``, ``network``)."""
    hparams = checkpoint.get("hyper_parameters") or {}
    stamp = checkpoint.get(STAMP_KEY) or {}
    task = stamp.get("task") or hparams.get("_class_path")
    if task is None:
        return None
    network = hparams.get("network")
    saved_network = network.get("class_path") if isinstance(network, Mapping) else None
    return task, stamp.get("network") or saved_network


def _classes(module: nn.Module) -> tuple[str, str | None]:
    network = getattr(module, "network", None)
    return class_path(module), class_path(network) if isinstance(network, nn.Module) else None


def _differ(made_by: tuple[str, str | None], built: tuple[str, str | None]) -> bool:
    """Another task class, or another network where both are known."""
    networks_known = None not in (made_by[1], built[1])
    return made_by[0] != built[0] or (networks_known and made_by[1] != built[1])


def _name(classes: tuple[str, str | None]) -> str:
    task, network = (path.rsplit(".", 1)[-1] if path else None for path in classes)
    return f"{task}({network})" if network else str(task)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
