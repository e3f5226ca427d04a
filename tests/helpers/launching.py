"""Starting a multi-process litlab command from a test, and comparing the weights it ends with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

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
