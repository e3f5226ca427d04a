"""``litlab sync [RUNS_ROOT] [--dry-run]``: upload the offline W&B runs under a runs folder.

An offline run is a ``wandb/offline-run-*`` folder in a run folder. ``wandb sync`` uploads one and
leaves a ``run-<id>.wandb.synced`` marker beside its log; runs with that marker are skipped, so
running ``litlab sync`` again uploads only what is new. Nothing is deleted: the runs stay on
disk whatever happens.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from litlab.app.wandb_login import wandb_logged_in
from litlab.core.errors import LitlabError
from litlab.core.launch_form import as_launched

log = logging.getLogger(__name__)

OFFLINE_RUN_GLOB = "offline-run-*"
SYNCED_SUFFIX = ".synced"


@dataclass(frozen=True)
class OfflineRun:
    """An offline W&B run folder.

    Args:
        path: The ``offline-run-*`` folder.
        log_files: Its transaction logs (``run-<id>.wandb``; more than one after a resume).
    """

    path: Path
    log_files: tuple[Path, ...]

    @property
    def synced(self) -> bool:
        """Whether ``wandb sync`` has uploaded every log of the run."""
        return all(_marker(log_file).exists() for log_file in self.log_files)


def _marker(log_file: Path) -> Path:
    return log_file.with_name(log_file.name + SYNCED_SUFFIX)


def find_offline_runs(runs_root: str | os.PathLike[str]) -> list[OfflineRun]:
    """Every offline W&B run under ``runs_root`` that has a transaction log, in path order
    (in a litlab runs folder: by experiment, then oldest first)."""
    runs = []
    for path in Path(runs_root).rglob(OFFLINE_RUN_GLOB):
        log_files = tuple(sorted(path.glob("*.wandb")))
        if path.is_dir() and log_files:
            runs.append(OfflineRun(path, log_files))
    return sorted(runs, key=lambda run: str(run.path))


def upload(runs: list[OfflineRun]) -> None:
    """``wandb sync`` the runs, in one call so that W&B uploads several at once."""
    command = [sys.executable, "-m", "wandb", "sync", *(str(run.path) for run in runs)]
    # Its own progress and errors go straight to the terminal; success is read from the
    # markers it leaves.
    subprocess.run(command, check=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litlab sync",
        description="Upload every offline W&B run under a runs folder that is not uploaded yet "
        "(with `wandb sync`). Sync after the runs have finished: a run still training is "
        "uploaded only as far as it got.",
    )
    parser.add_argument(
        "runs_root",
        nargs="?",
        default="runs",
        help="The folder that holds the run folders (litlab's --runs_root). Default: runs",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="List the runs and what would be uploaded; upload nothing.",
    )
    return parser


def main(argv: list[str]) -> None:
    """Entry point of ``litlab sync``."""
    args = build_parser().parse_args(argv)

    runs_root = Path(args.runs_root)
    if not runs_root.is_dir():
        raise LitlabError(
            f"runs folder not found: {runs_root}. Give the folder that holds the run folders "
            f"(the --runs_root of your litlab runs), e.g. {as_launched('litlab', 'sync', 'runs')}"
        )
    runs = find_offline_runs(runs_root)
    pending = [run for run in runs if not run.synced]
    log.info(
        "%d offline W&B run(s) under %s: %d to upload, %d already uploaded",
        len(runs),
        runs_root,
        len(pending),
        len(runs) - len(pending),
    )
    for run in runs:
        log.info("  %-16s %s", "uploaded" if run.synced else "to upload", run.path)
    if not pending:
        return
    if args.dry_run:
        log.info("dry run: nothing uploaded")
        return
    if not wandb_logged_in():
        raise LitlabError(
            f"no W&B login: run `{as_launched('wandb', 'login')}` (or set WANDB_API_KEY) "
            f"first, then `{as_launched('litlab', 'sync', str(runs_root))}` again. Nothing was "
            f"uploaded."
        )

    upload(pending)

    failed = [run for run in pending if not run.synced]
    for run in pending:
        log.info("  %-16s %s", "not uploaded" if run in failed else "uploaded now", run.path)
    if failed:
        raise LitlabError(
            f"{len(failed)} of {len(pending)} run(s) were not uploaded (see wandb's messages "
            f"above); they stay on disk, and `{as_launched('litlab', 'sync', str(runs_root))}` "
            f"tries them again."
        )
    log.info("uploaded %d run(s)", len(pending))
