"""Commands printed for the user to run next, in the form they launched litlab with."""

from __future__ import annotations

import os
import shlex


def as_launched(*command: str) -> str:
    """``command`` as a shell line the user can paste: behind ``uv run`` when this process was
    started through ``uv run`` (which sets ``UV_RUN_RECURSION_DEPTH``), since the project's
    ``litlab`` and ``wandb`` are then usually not on the user's PATH."""
    prefix = ["uv", "run"] if os.environ.get("UV_RUN_RECURSION_DEPTH") else []
    return shlex.join([*prefix, *command])
