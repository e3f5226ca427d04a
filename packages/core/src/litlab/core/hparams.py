"""Hyperparameter saving that keeps checkpoints self-describing."""

from __future__ import annotations

from litlab.core.lightning_internals import cli_given_hyperparameters


def module_args_to_ignore(*module_args: str) -> list[str]:
    """Names to pass as ``save_hyperparameters(ignore=...)``.

    Under ``litlab``/LightningCLI the saved hyperparameters are the parsed config, where a
    network argument is a ``class_path`` that rebuilds it from the checkpoint alone, so nothing
    is ignored. Built from Python, such an argument is a live ``nn.Module`` that must not be
    pickled into the hyperparameters (its weights are in the state dict anyway).
    """
    return [] if cli_given_hyperparameters() is not None else list(module_args)
