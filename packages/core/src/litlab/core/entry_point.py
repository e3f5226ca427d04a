"""The ``litlab`` console command, before anything heavy is imported.

``litlab fit|validate|test|predict`` go to LightningCLI (:mod:`litlab.core.cli`, which imports
Lightning); litlab's own verbs (``sweep``, ``sync``, ``export``) are dispatched from here, so
``litlab sync --help`` does not wait for Lightning to import.
"""

from __future__ import annotations

import importlib
import logging
import sys

from litlab.core.cli_errors import find_litlab_error

log = logging.getLogger("litlab")

# litlab's verbs beside LightningCLI's: verb -> (module with a ``main(argv)``, one-line help).
# Imported only when used, so each pays for its own imports.
EXTRA_VERBS = {
    "sweep": ("litlab.core.sweeps.command", "Run a hyperparameter sweep file (W&B or Optuna)."),
    "sync": ("litlab.core.sync", "Upload the offline W&B runs under a runs folder."),
    "export": ("litlab.core.export.command", "Export a checkpoint to ONNX or TorchScript."),
}


def configure_logging() -> None:
    """litlab's messages go to stderr as ``litlab: ...`` lines."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("litlab: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def run_extra_verb(verb: str, argv: list[str]) -> None:
    """Run one of :data:`EXTRA_VERBS`; a user error ends as one ``litlab VERB: error:`` line."""
    module = importlib.import_module(EXTRA_VERBS[verb][0])
    try:
        module.main(argv)
    except Exception as err:
        if (user_error := find_litlab_error(err)) is None:
            raise
        sys.exit(f"litlab {verb}: error: {user_error}")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``litlab`` console script."""
    configure_logging()
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] in EXTRA_VERBS:
        run_extra_verb(argv[0], argv[1:])
        return
    from litlab.core.cli import main as lightning_cli_main

    lightning_cli_main(args)
