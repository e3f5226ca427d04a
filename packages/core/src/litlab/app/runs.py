"""The folder layout of a run, and finding the checkpoints of earlier runs.

Every ``litlab`` command gets its own run folder::

    <runs_root>/<experiment>/<YYYYmmdd-HHMMSS>-<id>/
        config.yaml          the resolved config
        checkpoints/best.ckpt, checkpoints/last.ckpt
        wandb/               the W&B run files (offline runs wait here for ``wandb sync``)
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
import time
from pathlib import Path

# Set by rank zero so that processes Lightning launches for the other ranks use the same folder.
RUN_DIR_ENV_VAR = "LITLAB_RUN_DIR"


def new_run_id() -> str:
    """A short random id, also used as the W&B run id.

    Under a W&B sweep agent it is the id of the W&B run the agent made for this trial
    (``WANDB_RUN_ID``): W&B ignores any other id then, and the run folder keeps its name.
    """
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return os.environ["WANDB_RUN_ID"]
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def new_run_dir(runs_root: str | os.PathLike[str], experiment: str, run_id: str) -> Path:
    """The folder of a new run (not created here: nothing is written for a dry run)."""
    return Path(runs_root) / experiment / f"{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"


def launch_key() -> str | None:
    """What names this launch alike on every rank when a launcher starts each rank itself, or
    None when the process runs alone or Lightning launches the other ranks (they inherit
    ``LITLAB_RUN_DIR`` instead).

    torchrun gives every worker ``TORCHELASTIC_RUN_ID`` (its ``--rdzv-id``; a fresh one per
    ``--standalone`` launch; its default ``none`` names nothing). SLURM's srun gives every task
    the job and step ids; a requeued job keeps its job id, and the steps count again from 0.
    """
    torchrun_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if torchrun_id and torchrun_id != "none":
        return f"torchrun:{torchrun_id}"
    job, step = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_STEP_ID")
    if job and step is not None:
        return f"slurm:{os.environ.get('SLURM_CLUSTER_NAME', '')}:{job}.{step}"
    return None


def run_dir_for_command(runs_root: str | os.PathLike[str], experiment: str) -> Path:
    """The run folder of a new command.

    Alone, or with the ranks Lightning launches: a new folder with a random id. Under torchrun
    or srun every rank starts the command by itself, so the id comes from the launch
    (:func:`launch_key`, hashed with the runs folder and the experiment): every rank, on every
    node, names the same run and W&B id, with no communication. When a folder with that id
    already exists, it is this launch's, started before (a requeued SLURM job, a torchrun
    restart) and is used again, so Lightning's SLURM auto-requeue finds its ``hpc_ckpt_*.ckpt``
    there and resumes. Only the timestamp of a first start comes from each rank's clock; rank 0
    writes every file, and Lightning hands its folder to the other ranks (``trainer.log_dir``,
    the checkpoint folder).
    """
    key = launch_key()
    # Under a W&B sweep agent W&B fixes the id itself (new_run_id).
    if key is None or os.environ.get("WANDB_SWEEP_ID"):
        return new_run_dir(runs_root, experiment, new_run_id())
    seed = f"{key}|{Path(runs_root).resolve()}|{experiment}".encode()
    number = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "little")
    alphabet = string.ascii_lowercase + string.digits
    run_id = "".join(alphabet[(number // 36**i) % 36] for i in range(8))
    experiment_dir = Path(runs_root) / experiment
    earlier = sorted(experiment_dir.glob(f"*-{run_id}")) if experiment_dir.is_dir() else []
    return earlier[-1] if earlier else new_run_dir(runs_root, experiment, run_id)


def relaunch_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a command started again in its own run folder (a requeued SLURM job, a
    restarted torchrun: see :func:`run_dir_for_command`) goes on from: the newest of
    ``checkpoints/last.ckpt`` (written at the latest validation, or when a SIGTERM stopped the
    run) and Lightning's ``hpc_ckpt_<n>.ckpt`` (written on SLURM's requeue signal); None in a
    folder that has neither."""
    run_dir = Path(run_dir)
    candidates = [run_dir / "checkpoints" / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [path for path in candidates if path.is_file()]
    return max(existing, key=lambda path: path.stat().st_mtime) if existing else None
