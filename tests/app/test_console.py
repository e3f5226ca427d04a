"""A quiet console: `litlab fit` and `litlab test`, run as a user runs them at 80 columns, print
none of Lightning's advertisements, stray warnings or zero FLOPs, and their tables fit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from litlab.app.console import CompactModelSummary, metrics_table

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"
LITLAB = Path(sys.executable).parent / "litlab"
TINY_RUN = [
    "--model.network.init_args.hidden_features", "[32]",
    "--trainer.max_epochs", "1",
    "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.limit_test_batches", "1",
    "--trainer.enable_progress_bar", "false",
    "--trainer.logger", "false",
    "--data.init_args.num_workers", "0",
]  # fmt: skip
SILENCED = (
    "LeafSpec",  # Lightning's FutureWarning
    "litlogger",
    "litmodels",
    "💡",
    "FLOPs",
    "dirpath has changed",
)


def litlab(*args: str, cwd: Path) -> str:
    env = {**os.environ, "COLUMNS": "80", "WANDB_SILENT": "true"}
    result = subprocess.run(
        [str(LITLAB), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def assert_quiet(output: str) -> None:
    assert [message for message in SILENCED if message in output] == [], output
    table_lines = [line for line in output.splitlines() if "│" in line or "─" in line]
    assert all(len(line) <= 80 for line in table_lines), output


_fitted: dict[str, tuple[Path, str]] = {}


def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny fit's working directory (with its best.ckpt) and its output, run once."""
    if "fit" not in _fitted:
        cwd = tmp_path_factory.mktemp("console")
        _fitted["fit"] = cwd, litlab("fit", "-c", str(MNIST_MLP), *TINY_RUN, cwd=cwd)
    return _fitted["fit"]


@pytest.mark.slow
def test_fit_prints_the_summary_without_flops_or_tips(data_root, tmp_path_factory):
    _, output = fitted(tmp_path_factory)
    assert_quiet(output)
    assert "Trainable params" in output
    assert "MLPClassifier" in output


@pytest.mark.slow
def test_test_prints_a_narrow_metrics_table_and_no_checkpoint_folder_warning(
    data_root, tmp_path_factory
):
    cwd, _ = fitted(tmp_path_factory)
    output = litlab("test", "-c", str(MNIST_MLP), "--ckpt_path", "best", *TINY_RUN, cwd=cwd)
    assert_quiet(output)
    lines = output.splitlines()
    header = lines.index("Test metric │ value")
    assert lines[header + 2].startswith("test/acc    │ ")
    assert output.count("Test metric") == 1  # Lightning's table is not printed as well


@pytest.mark.slow
def test_dry_run_has_no_litmodels_tip(data_root, tmp_path):
    # Without litlab's checkpoints (a dry run writes none), Lightning adds its own and
    # advertises litmodels for it.
    output = litlab(
        "fit", "-c", str(MNIST_MLP), *TINY_RUN, "--trainer.fast_dev_run", "1", cwd=tmp_path
    )
    assert_quiet(output)


def test_metrics_table_keeps_long_names_whole_within_80_columns():
    metrics = {
        "test/fid_mnist_classifier_penultimate": torch.tensor(12.345678901),
        "test/kid_mnist_classifier_penultimate_std": torch.tensor(0.0012000000569969416),
        "test/loss": 1.4706082344055176,
    }
    lines = metrics_table("Test", metrics)
    assert lines[0] == "Test metric                               │ value"
    assert lines[2:] == [
        "test/fid_mnist_classifier_penultimate     │ 12.3457",
        "test/kid_mnist_classifier_penultimate_std │ 0.0012",
        "test/loss                                 │ 1.47061",
    ]
    assert max(len(line) for line in lines) <= 80


def test_metrics_table_has_a_column_per_dataloader():
    metrics = {
        "val/acc/dataloader_idx_0": 0.5,
        "val/acc/dataloader_idx_1": 0.25,
        "val/loss/dataloader_idx_1": 2.0,
    }
    assert metrics_table("Validate", metrics) == [
        "Validate metric │ DataLoader 0 │ DataLoader 1",
        "────────────────┼──────────────┼─────────────",
        "val/acc         │ 0.5          │ 0.25",
        "val/loss        │              │ 2",
    ]


def test_metrics_table_of_nothing_is_empty():
    assert metrics_table("Test", {}) == []


def summary_output(total_flops: int, capsys) -> str:
    data = [
        (" ", ["0"]),
        ("Name", ["model"]),
        ("Type", ["MLP"]),
        ("Params", ["1.9 M"]),
        ("Mode", ["train"]),
        ("FLOPs", ["12.3 K" if total_flops else "0"]),
    ]
    CompactModelSummary.summarize(data, 1900, 1900, 0.0076, {"train": 3, "eval": 0}, total_flops)
    return capsys.readouterr().out


def test_model_summary_drops_flops_that_were_not_measured(capsys):
    output = summary_output(0, capsys)
    assert "FLOPs" not in output
    assert "0 │ model │ MLP  │ 1.9 M  │ train" in output


def test_model_summary_keeps_measured_flops(capsys):
    output = summary_output(12_300, capsys)
    assert "│ FLOPs" in output
    assert "12.3 K    Total FLOPs" in output
