"""Whether W&B has a login, and so which mode a run takes: light, for commands that must start
fast (``litlab sync``, ``litlab sweep``) without importing Lightning."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_WANDB_HOST = "https://api.wandb.ai"
OFFLINE_MODES = ("offline", "dryrun")
# Modes in which nothing reaches a W&B server.
LOCAL_MODES = (*OFFLINE_MODES, "disabled")


def wandb_logged_in() -> bool:
    """Whether W&B has credentials: an API key in the environment or in the netrc file."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).netloc
    netrc_path = os.environ.get("NETRC") or Path.home() / ".netrc"
    try:
        return netrc.netrc(netrc_path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(offline: bool | None) -> str:
    """``offline=True/False`` forces the mode; ``None`` follows ``WANDB_MODE``, then the login."""
    if offline is not None:
        return "offline" if offline else "online"
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_logged_in() else "offline"
