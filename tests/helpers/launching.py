"""Starting a multi-process litlab command from a test, its one-process reference in the test's
own process, and comparing the weights they end with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import torch

from litlab.app.cli import main

HELPERS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def launch(command: list[str], cwd: Path, timeout: int = 400) -> subprocess.CompletedProcess:
    """Runs ``command`` (its ranks find tests/helpers on PYTHONPATH) and checks it succeeded."""
    env = {**os.environ, "PYTHONPATH": str(HELPERS)}
    env.pop("LITLAB_RUN_DIR", None)
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest elementwise difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[name].float() - b[name].float()).abs().max().item() for name in a)


def fit_in_process(config: Path, args: list[str], runs: Path) -> None:
    """``litlab fit -c config --runs_root runs *args`` in this process (no start-up cost)."""
    litlab_in_process("fit", config, args, runs)


def litlab_in_process(subcommand: str, config: Path, args: list[str], runs: Path) -> None:
    """``litlab subcommand -c config --runs_root runs *args`` in this process."""
    # LightningCLI warns when pytest's own arguments are in sys.argv.
    with mock.patch.object(sys, "argv", ["litlab"]):
        main([subcommand, "-c", str(config), "--runs_root", str(runs), *args])
