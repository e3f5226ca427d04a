"""``litlab VERB --help``, rendered once by the full parser and then read from a cache.

The full parser needs Lightning, whose import (torch, torchmetrics and through it torchvision
and transformers) takes most of ten seconds; the help it prints changes only with what it is
built from. So the first ``--help`` of a command line renders it and stores the text, and the
next ones print the stored text: it is keyed by the command line, every config file or other
file the command line names (by content), the terminal width, the litlab-relevant environment,
every installed distribution's version and litlab's own source files (an editable install
keeps its version while its code changes). The cache lives in ``$XDG_CACHE_HOME/litlab/help``
(default ``~/.cache/litlab/help``); deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Environment variables that can change what the parser prints (its defaults, its formatting).
ENV_PREFIXES = ("LITLAB_", "JSONARGPARSE_")


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "litlab" / "help"


def show_help(argv: list[str], render: Callable[[], None]) -> None:
    """Prints the help that ``render`` (the full parser) prints for ``argv``, from the cache
    when this exact input was rendered before; exits as ``render`` does."""
    path = cache_dir() / f"{_key(argv)}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        pass
    else:
        sys.stdout.write(text)
        sys.exit(0)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            render()
    except SystemExit as exit_info:
        if exit_info.code in (None, 0) and captured.getvalue():
            _store(path, captured.getvalue())
        raise
    finally:
        sys.stdout.write(captured.getvalue())


def _store(path: Path, text: str) -> None:
    """Writes atomically, so a concurrent ``--help`` reads the whole text or none. A cache that
    cannot be written (a read-only home) only costs the next ``--help`` its speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as err:
        log.debug("help not cached in %s: %s", path.parent, err)
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except OSError as err:
        log.debug("help not cached in %s: %s", path.parent, err)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _key(argv: list[str]) -> str:
    inputs = {
        "argv": argv,
        "prog": Path(sys.argv[0]).name,
        "python": sys.version,
        "columns": shutil.get_terminal_size().columns,
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)),
        "files": [_file_digest(arg) for arg in _named_paths(argv)],
        "distributions": sorted(
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in importlib.metadata.distributions()
        ),
        "litlab_sources": _litlab_sources(),
    }
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


def _named_paths(argv: list[str]) -> list[str]:
    """Every argument that names a file, ``--config=x.yaml`` included: configs, and files
    given to other keys (``--model m.yaml``) whose content becomes defaults."""
    values = [arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg for arg in argv]
    return [value for value in values if os.path.isfile(value)]


def _file_digest(name: str) -> list[str]:
    return [os.path.abspath(name), hashlib.sha256(Path(name).read_bytes()).hexdigest()]


def _litlab_sources() -> list[list[str | int]]:
    """Path, size and modification time of each litlab source file (all of the namespace
    package's portions), found without importing any of them."""
    spec = importlib.util.find_spec("litlab")
    found: list[list[str | int]] = []
    locations = spec.submodule_search_locations if spec else None
    for portion in sorted(locations or []):
        for folder, _, files in os.walk(portion):
            for name in sorted(files):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    found.append([os.path.join(folder, name), stat.st_size, stat.st_mtime_ns])
    return sorted(found)
