"""A trial as a process: ``litlab fit -c <program> --key=value ...``, output to a log file.

The values are sampled once, by the sweep, and travel on the command line. Lightning's DDP
launcher starts the other ranks by re-running this same command line, so every rank trains
with the same values: no rank samples anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litlab.core.errors import LitlabError

POLL_S = 0.5
# How long a trial may take to shut down cleanly (close its W&B run) after Ctrl-C.
STOP_GRACE_S = 60.0


def litlab_executable() -> str:
    """The ``litlab`` script of this Python environment."""
    beside_python = Path(sys.executable).parent / "litlab"
    found = str(beside_python) if beside_python.is_file() else shutil.which("litlab")
    if found is None:
        raise LitlabError(
            f"the litlab command was not found beside {sys.executable} or on PATH; install "
            "litlab-core in this environment (uv sync)"
        )
    return found


def format_value(value: Any) -> str:
    """A value as the command line gives it: strings as they are, the rest as JSON (which the
    config parser reads as YAML): ``0.001``, ``true``, ``null``, ``[256, 256]``."""
    return value if isinstance(value, str) else json.dumps(value)


def value_arguments(values: Mapping[str, Any]) -> list[str]:
    return [f"--{key}={format_value(value)}" for key, value in values.items()]


def trial_command(program: str, values: Mapping[str, Any]) -> list[str]:
    """The command line of a trial: the experiment config and the trial's values."""
    return [litlab_executable(), "fit", "-c", program, *value_arguments(values)]


def run_process(
    command: list[str], env: Mapping[str, str], log_path: Path, stop: threading.Event
) -> tuple[int, bool]:
    """Run ``command`` with its output in ``log_path``; return its exit code and whether
    ``stop`` interrupted it.

    The process gets its own process group, so a Ctrl-C in the terminal reaches the sweep
    alone and the sweep sends the trial (and any DDP ranks it started) exactly one SIGINT:
    Lightning then shuts down cleanly. After :data:`STOP_GRACE_S` it is killed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as output:
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        interrupted_at: float | None = None
        try:
            while True:
                try:
                    return process.wait(timeout=POLL_S), interrupted_at is not None
                except subprocess.TimeoutExpired:
                    pass
                if stop.is_set() and interrupted_at is None:
                    interrupted_at = time.monotonic()
                    _signal_group(process, signal.SIGINT)
                elif (
                    interrupted_at is not None and time.monotonic() - interrupted_at > STOP_GRACE_S
                ):
                    _signal_group(process, signal.SIGKILL)
        except KeyboardInterrupt:
            # Called from the main thread (a check before the sweep): the trial is in its own
            # process group, so it must be stopped here.
            _signal_group(process, signal.SIGINT)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
            raise


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a trial's log, where its error is."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    # Progress bars rewrite their line with carriage returns: keep the last state only.
    kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line for line in kept[-lines:] if line.strip())


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
