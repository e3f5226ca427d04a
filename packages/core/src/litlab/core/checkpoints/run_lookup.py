"""Finding the checkpoints of earlier runs and the config each was trained with, in the run
folders ``litlab`` writes (``<runs_root>/<experiment>/<time>-<id>/config.yaml`` beside
``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt``).

The library owns this lookup, not the application that makes the folders, because domain code
reads earlier runs too (the generative metrics load a trained vision classifier).
"""

from __future__ import annotations

import os
from pathlib import Path

from litlab.core.errors import LitlabError

CHECKPOINT_ALIASES = ("best", "last")
RUN_CONFIG_FILE = "config.yaml"


def run_dir_of_checkpoint(checkpoint: str | os.PathLike[str]) -> Path | None:
    """The run folder a checkpoint lies in (``<run>/checkpoints/<name>.ckpt`` beside
    ``<run>/config.yaml``), or None for a checkpoint kept anywhere else."""
    config_file = run_config_file(checkpoint)
    return None if config_file is None else config_file.parent


def run_config_file(checkpoint: str | os.PathLike[str]) -> Path | None:
    """The resolved config of the run a checkpoint lies in (``<run>/config.yaml`` beside
    ``<run>/checkpoints/<name>.ckpt``, as ``litlab fit`` writes them), or None for a
    checkpoint kept anywhere else."""
    checkpoints = Path(checkpoint).parent
    config_file = checkpoints.parent / RUN_CONFIG_FILE
    if checkpoints.name != "checkpoints" or not config_file.is_file():
        return None
    return config_file


def find_checkpoint(runs_root: str | os.PathLike[str], experiment: str, alias: str) -> Path:
    """The ``best`` or ``last`` checkpoint of the newest run of ``experiment`` that has one."""
    pattern = f"*/checkpoints/{alias}.ckpt"
    experiment_dir = Path(runs_root) / experiment
    candidates = sorted(experiment_dir.glob(pattern)) if experiment_dir.is_dir() else []
    if not candidates:
        raise LitlabError(
            f"no '{alias}' checkpoint found: nothing matches {experiment_dir / pattern}. "
            f"Train first (litlab fit -c <config>), pass --experiment/--runs_root of the run "
            f"you mean, or give the path of a checkpoint file instead."
        )
    # Run folder names start with a timestamp, so the last one sorted is the newest.
    return candidates[-1]
