"""Any task back from a ``litlab fit`` checkpoint by the class path the checkpoint records, so
that code using another package's trained model (generative metrics on a vision classifier)
never names that package's task classes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule

from litlab.core.checkpoints.class_import import import_class
from litlab.core.errors import LitlabError


def load_task(path: Path, checkpoint: Mapping[str, Any], how_to_save: str) -> LightningModule:
    """The task of ``checkpoint`` (the contents of ``path``) on the CPU, built by the class
    its hyperparameters name (``_class_path``, as LightningCLI saves them). Loading runs the
    code the checkpoint names: load only checkpoints you trust.

    Args:
        path: The ``.ckpt`` file.
        checkpoint: Its contents, already read.
        how_to_save: What to do when the checkpoint names no class, for the error message.
    """
    class_path = checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise LitlabError(
            f"{path} does not name the class of its task (no '_class_path' in its "
            f"hyperparameters): {how_to_save}"
        )
    task_class = import_class(class_path, path, LightningModule)
    return task_class.load_from_checkpoint(path, map_location="cpu", weights_only=False)
