"""A tiny MNIST classifier trained by `litlab fit` for a few steps: a real run folder (config.yaml,
checkpoints/best.ckpt) that sample-quality metrics can load, trained once per test session."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import pytest

from litlab.app.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_CNN = REPO_ROOT / "experiments" / "vision" / "mnist_cnn.yaml"
TINY_CNN = [
    "--model.network.init_args.channels", "[8, 16]",
    "--model.network.init_args.hidden", "32",
    "--data.init_args.batch_size", "64",
    "--data.init_args.in_memory", "false",
    "--data.init_args.random_crop_padding", "0",
    "--data.init_args.num_workers", "0",
    "--model.lr", "0.01",
    "--trainer.max_epochs", "1",
    "--trainer.limit_train_batches", "50",
    "--trainer.limit_val_batches", "2",
    "--trainer.logger", "false",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip

_trained: dict[str, Path] = {}


def tiny_classifier_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs root holding ``mnist_cnn/<run>/checkpoints/best.ckpt`` of the tiny classifier
    (the experiment is named after mnist_cnn.yaml, as `litlab fit -c` names it)."""
    if "runs" not in _trained:
        runs = tmp_path_factory.mktemp("classifier") / "runs"
        # LightningCLI warns when pytest's own arguments are in sys.argv.
        with mock.patch.object(sys, "argv", ["litlab"]):
            main(["fit", "-c", str(MNIST_CNN), "--runs_root", str(runs), *TINY_CNN])
        _trained["runs"] = runs
    return _trained["runs"]
