"""Checkpoint files that are either the old one or the new one, never half of one."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.strategies import Strategy

from litlab.core.checkpoints.checks import read_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with a crash-safe save and readable load errors.

    A local checkpoint is written to a hidden temporary file in the same folder, flushed to
    disk (``fsync``) and then renamed over the target (``os.replace``, atomic on POSIX and
    Windows), so a crash, a full disk or a kill while saving leaves the previous ``last.ckpt``
    whole. Lightning's own save goes through an fsspec transaction whose temporary file lies in
    the system temp folder: on another file system the final move is a copy, which a crash
    can leave half-written, and nothing is fsynced. URLs (``s3://`` ...) keep Lightning's
    save.

    A checkpoint that cannot be loaded raises a :class:`~litlab.core.errors.LitlabError` naming
    the file (see :func:`~litlab.core.checkpoints.checks.read_checkpoint`). One already read
    (``litlab`` reads a ``--ckpt_path`` once, safely, to check it) can be handed over with
    :meth:`hand_over`, so Lightning's load does not read the file again.
    """

    def __init__(self) -> None:
        super().__init__()
        self._handed_over: tuple[Path, dict[str, Any]] | None = None

    def hand_over(self, path: str | Path, checkpoint: dict[str, Any]) -> None:
        """Give the next :meth:`load_checkpoint` of ``path`` this already read ``checkpoint``."""
        self._handed_over = (Path(path).resolve(), checkpoint)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(target)
        temporary = target.with_name(f"{_temporary_prefix(target)}{secrets.token_hex(4)}.tmp")
        try:
            # "x": a fresh file with the usual permissions (mkstemp's would be 0600).
            with open(temporary, "xb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        _fsync_folder(target.parent)

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if not _is_local(path):
            return super().load_checkpoint(path, map_location, weights_only)
        handed_over, self._handed_over = self._handed_over, None
        if handed_over is not None and handed_over[0] == Path(path).resolve():
            return handed_over[1]
        # Lightning's default map_location keeps each tensor on the device it was saved from.
        location = map_location if map_location is not None else (lambda storage, _: storage)
        return read_checkpoint(path, weights_only=weights_only, map_location=location)


def _is_local(path: str | Path) -> bool:
    # A URL, file:// included, goes to Lightning's fsspec code, which understands it.
    return "://" not in str(path)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _remove_leftovers(target: Path) -> None:
    """Temporary files of a save that was killed outright (no exception to clean up after);
    only one process writes a given checkpoint file, so none of them is in use."""
    for leftover in target.parent.glob(f"{glob.escape(_temporary_prefix(target))}*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _fsync_folder(folder: Path) -> None:
    """Makes the rename itself durable; folders cannot be opened for this on Windows."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def use_atomic_checkpoints(strategy: Strategy) -> None:
    """Make ``strategy`` save through :class:`AtomicCheckpointIO` when it would use Lightning's
    plain ``TorchCheckpointIO``; a CheckpointIO the user configured (or one a strategy needs,
    such as XLA's) is kept."""
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
