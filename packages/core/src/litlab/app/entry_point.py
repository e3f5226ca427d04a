"""The ``litlab`` console command, before anything heavy is imported.

``litlab fit|validate|test|predict`` go to LightningCLI (:mod:`litlab.app.cli`, which imports
Lightning); litlab's own verbs (``sweep``, ``sync``, ``export``) are dispatched from here, so
``litlab sync --help`` does not wait for Lightning to import. ``litlab --help`` is rendered here
by a parser of the same shape as LightningCLI's top level, and ``litlab VERB --help`` comes from
:mod:`litlab.app.help_cache` once it has been rendered.
"""

from __future__ import annotations

import importlib
import logging
import sys
from argparse import RawDescriptionHelpFormatter

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

from litlab.app import help_cache
from litlab.app.cli_errors import find_litlab_error

log = logging.getLogger("litlab")

# litlab's verbs beside LightningCLI's: verb -> (module with a ``main(argv)``, one-line help).
# Imported only when used, so each pays for its own imports.
EXTRA_VERBS = {
    "sweep": ("litlab.app.sweeps.command", "Run a hyperparameter sweep file (W&B or Optuna)."),
    "sync": ("litlab.app.sync", "Upload the offline W&B runs under a runs folder."),
    "export": ("litlab.app.export.command", "Export a checkpoint to ONNX or TorchScript."),
}

# LightningCLI's verbs with the help line it takes from each Trainer method's docstring, so
# that `litlab --help` needs no Lightning (a test compares it with LightningCLI's own).
LIGHTNING_VERBS = {
    "fit": "Runs the full optimization routine.",
    "validate": "Perform one evaluation epoch over the validation set.",
    "test": "Perform one evaluation epoch over the test set. It's separated from fit to make "
    "sure you never run on your",
    "predict": "Run inference on your data. This will call the model forward function to "
    "compute predictions. Useful to",
}
HELP_FLAGS = ("-h", "--help")

DESCRIPTION = "litlab: train, evaluate, sweep and export PyTorch Lightning experiments.\n\n" + (
    "Other verbs (each with its own --help):\n"
    + "\n".join(f"  litlab {verb:<8}{text}" for verb, (_, text) in EXTRA_VERBS.items())
)


class HelpFormatter(RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """Keeps the description's line breaks (the list of verbs)."""


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


def print_top_level_help() -> None:
    """``litlab --help``: what LightningCLI's top-level parser prints, without Lightning."""
    parser = ArgumentParser(description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument(
        "-c",
        "--config",
        action=ActionConfigFile,
        help="Path to a configuration file in json or yaml format.",
    )
    subcommands = parser.add_subcommands()
    for verb, text in LIGHTNING_VERBS.items():
        subcommands.add_subcommand(verb, ArgumentParser(), help=text)
    parser.print_help()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``litlab`` console script."""
    configure_logging()
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] in EXTRA_VERBS:
        run_extra_verb(argv[0], argv[1:])
        return
    if len(argv) == 1 and argv[0] in HELP_FLAGS:
        print_top_level_help()
        return
    if argv and argv[0] in LIGHTNING_VERBS and any(flag in argv for flag in HELP_FLAGS):
        help_cache.show_help(argv, lambda: _lightning_cli_main(args))
        return
    _lightning_cli_main(args)


def _lightning_cli_main(args: list[str] | None) -> None:
    from litlab.app.cli import main as lightning_cli_main

    lightning_cli_main(args)
