"""What a run was made from: code version, command line, package versions, machine, start time.

Every ``litlab`` run records it in ``run_info.json`` beside ``config.yaml`` and in its W&B config
under the ``litlab`` key. The git state is that of the working directory the command ran in (the
repository the experiment is run from); outside a repository, or without git, it is null.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUN_INFO_FILE_NAME = "run_info.json"
# Enough to see what was uncommitted without filling the W&B config with a whole checkout.
MAX_DIRTY_FILES = 50
GIT_TIMEOUT_S = 5.0
# Read from the installed distributions' metadata, so nothing is imported for them.
VERSIONED_DISTRIBUTIONS = (
    "torch",
    "lightning",
    "torchmetrics",
    "jsonargparse",
    "wandb",
    "torchvision",
    "transformers",
    "peft",
    "datasets",
)


@dataclass(frozen=True)
class GitState:
    """The git state of a working tree.

    Args:
        root: Top folder of the repository.
        commit: Hash of the checked-out commit (None before the first commit).
        branch: Checked-out branch (None when the HEAD is detached).
        dirty: Whether tracked files differ from the commit or untracked files exist.
        dirty_files: ``git status --porcelain`` paths, at most ``MAX_DIRTY_FILES``.
        dirty_file_count: How many paths differ in all.
    """

    root: str
    commit: str | None
    branch: str | None
    dirty: bool | None
    dirty_files: list[str]
    dirty_file_count: int


def _git(args: list[str], cwd: Path) -> str | None:
    """The output of a git command, or None when it fails, times out or git is missing."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.debug("git %s failed: %s", " ".join(args), err)
        return None
    return result.stdout if result.returncode == 0 else None


def find_git_root(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """Top folder of the git repository holding ``cwd`` (default: the working directory)."""
    output = _git(["rev-parse", "--show-toplevel"], Path(cwd or "."))
    return output.strip() if output else None


def git_state(cwd: str | os.PathLike[str] | None = None) -> GitState | None:
    """The git state of the repository holding ``cwd``; None outside one or without git."""
    cwd = Path(cwd or ".")
    root = find_git_root(cwd)
    if root is None:
        return None
    # One call gives the commit, the branch and the changed paths.
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=normal"], cwd)
    if status is None:
        return GitState(root, None, None, None, [], 0)
    commit = branch = None
    paths = []
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            paths.append(_porcelain_v2_path(line))
    return GitState(
        root=root,
        commit=commit,
        branch=branch,
        dirty=bool(paths),
        dirty_files=paths[:MAX_DIRTY_FILES],
        dirty_file_count=len(paths),
    )


def _porcelain_v2_path(line: str) -> str:
    # Entry kinds of `git status --porcelain=v2`: changed (1), renamed or copied (2, path then
    # a tab and the old path), unmerged (u), untracked (?). The path is the last field.
    fields_before_path = {"1": 8, "2": 9, "u": 10}.get(line[0])
    if fields_before_path is None:
        return line[2:]
    return line.split(" ", fields_before_path)[-1].split("\t")[0]


def package_versions() -> dict[str, str]:
    """Versions of Python, the main libraries and every installed litlab-* distribution."""
    versions = {"python": platform.python_version()}
    names = list(VERSIONED_DISTRIBUTIONS)
    names += sorted(
        {
            dist.metadata["Name"]
            for dist in metadata.distributions()
            if (dist.metadata["Name"] or "").lower().startswith("litlab-")
        }
    )
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect_run_info(
    command: list[str], run_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Everything a run records about how it was made, as JSON-ready values.

    Args:
        command: The command line, program name first.
        run_dir: The run folder, recorded so a W&B run leads back to its files.
    """
    git = git_state()
    return {
        "command": list(command),
        "cwd": os.getcwd(),
        "run_dir": str(Path(run_dir).resolve()) if run_dir is not None else None,
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "git": asdict(git) if git is not None else None,
        "versions": package_versions(),
    }


def write_run_info(info: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the run info as indented JSON."""
    Path(path).write_text(json.dumps(info, indent=2) + "\n")
