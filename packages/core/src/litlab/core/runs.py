"""The folder layout of a run, and finding the checkpoints of earlier runs.

Every ``litlab`` command gets its own run folder::

    <runs_root>/<experiment>/<YYYYmmdd-HHMMSS>-<id>/
        config.yaml          the resolved config
        checkpoints/best.ckpt, checkpoints/last.ckpt
        wandb/               the W&B run files (offline runs wait here for ``wandb sync``)
"""

from __future__ import annotations

import os
import secrets
import string
import time
from pathlib import Path

from litlab.core.errors import LitlabError

CHECKPOINT_ALIASES = ("best", "last")
# Set by rank zero so that processes Lightning launches for the other ranks use the same folder.
RUN_DIR_ENV_VAR = "LITLAB_RUN_DIR"


def new_run_id() -> str:
    """A short random id, also used as the W&B run id."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def new_run_dir(runs_root: str | os.PathLike[str], experiment: str, run_id: str) -> Path:
    """The folder of a new run (not created here: nothing is written for a dry run)."""
    return Path(runs_root) / experiment / f"{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"


def find_checkpoint(runs_root: str | os.PathLike[str], experiment: str, alias: str) -> Path:
    """The ``best`` or ``last`` checkpoint of the newest run of ``experiment`` that has one."""
    pattern = f"*/checkpoints/{alias}.ckpt"
    experiment_dir = Path(runs_root) / experiment
    candidates = sorted(experiment_dir.glob(pattern)) if experiment_dir.is_dir() else []
    if not candidates:
        raise LitlabError(
            f"no '{alias}' checkpoint found: nothing matches {experiment_dir / pattern}. "
            f"Train first (litlab fit -c <config>), pass --experiment/--runs_root of the run "
            f"you mean, or give --ckpt_path a checkpoint file."
        )
    # Run folder names start with a timestamp, so the last one sorted is the newest.
    return candidates[-1]
