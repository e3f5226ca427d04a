"""Where datasets live. One rule for every DataModule: ``--data.data_dir``, else
``$LITLAB_DATA``, else ``./data``."""

from __future__ import annotations

import os
from pathlib import Path

from litlab.core.errors import LitlabError

DATA_ENV_VAR = "LITLAB_DATA"
DEFAULT_DATA_DIR = "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the data root, checking that it is a directory if it already exists."""
    if data_dir is not None:
        source, root = "--data.data_dir", Path(data_dir)
    elif os.environ.get(DATA_ENV_VAR):
        source, root = f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR])
    else:
        source, root = "the default", Path(DEFAULT_DATA_DIR)
    root = root.expanduser()
    if root.exists() and not root.is_dir():
        raise LitlabError(
            f"data root {root} (from {source}) is not a directory. Point --data.data_dir or "
            f"${DATA_ENV_VAR} at the folder that holds the datasets."
        )
    return root
