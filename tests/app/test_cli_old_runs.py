"""A run folder of an earlier litlab: its config.yaml says ``model.init_args.model`` and names
``litlab.core.tracking.WandbLogger``, its checkpoint saved the network as ``model``. `litlab
test --ckpt_path <its checkpoint>` and `litlab export` still use it, with the same results,
and leave its files as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from fake_datasets import write_fake_mnist_like

from litlab.app.cli import LitlabCLI, main
from litlab.app.runs import RUN_DIR_ENV_VAR

MNIST_MLP = Path(__file__).resolve().parents[2] / "experiments" / "vision" / "mnist_mlp.yaml"


pytestmark = pytest.mark.usefixtures("cli_process")


@pytest.fixture
def fitted_run(tmp_path) -> Path:
    """The last.ckpt of a 2-step mnist_mlp run (with the W&B logger, offline) under ./runs."""
    write_fake_mnist_like(tmp_path / "data", "MNIST")
    LitlabCLI(args=[
        "fit", "-c", str(MNIST_MLP),
        "--data.init_args.data_dir", str(tmp_path / "data"),
        "--data.init_args.val_size", "100",
        "--data.init_args.num_workers", "0",
        "--data.init_args.download", "false",
        "--trainer.max_steps", "2",
        "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "2",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--model.network.init_args.hidden_features", "[16]",
    ])  # fmt: skip
    # Built in-process, the CLI leaves its run folder in the environment (for DDP ranks).
    os.environ.pop(RUN_DIR_ENV_VAR, None)
    (last,) = Path("runs/mnist_mlp").glob("*/checkpoints/last.ckpt")
    return last


def make_old(checkpoint_path: Path) -> None:
    """Rewrite a run as an earlier litlab wrote it."""
    config_file = checkpoint_path.parents[1] / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    task = config["model"]["init_args"]
    config["model"]["init_args"] = {("model" if k == "network" else k): v for k, v in task.items()}
    logger = config["trainer"]["logger"]
    assert logger["class_path"] == "litlab.app.tracking.WandbLogger"
    logger["class_path"] = "litlab.core.tracking.WandbLogger"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    hparams["model"] = hparams.pop("network")
    checkpoint["state_dict"] = {
        name.replace("network.", "model.", 1): value
        for name, value in checkpoint["state_dict"].items()
    }
    torch.save(checkpoint, checkpoint_path)


def metrics_of_test(checkpoint: Path, *args: str) -> dict[str, float]:
    cli = LitlabCLI(args=["test", *args, "--ckpt_path", str(checkpoint)])
    os.environ.pop(RUN_DIR_ENV_VAR, None)
    return {name: float(value) for name, value in cli.trainer.callback_metrics.items()}


def test_an_old_run_tests_as_it_did(fitted_run, caplog):
    before = metrics_of_test(fitted_run)
    assert "test/acc" in before
    make_old(fitted_run)
    config_file = fitted_run.parents[1] / "config.yaml"
    old_files = config_file.read_text(), fitted_run.read_bytes()
    assert "litlab.core.tracking.WandbLogger" in old_files[0]
    with caplog.at_level("INFO", logger="litlab"):
        after = metrics_of_test(fitted_run)
    assert after == before
    assert f"{config_file} was written by an earlier litlab" in caplog.text
    assert "model.init_args.model -> model.init_args.network" in caplog.text
    # Named with -c, as the --ckpt_path messages suggest, the run's config is upgraded too.
    assert metrics_of_test(fitted_run, "-c", str(config_file)) == before
    assert metrics_of_test(fitted_run, f"--config={config_file}") == before
    # The run's files are read upgraded, never rewritten.
    assert (config_file.read_text(), fitted_run.read_bytes()) == old_files


def test_an_old_run_exports_as_it_did(fitted_run, tmp_path):
    new_export, old_export = tmp_path / "new.pt", tmp_path / "old.pt"
    main(["export", "--ckpt", str(fitted_run), "--format", "torchscript",
          "--output", str(new_export)])  # fmt: skip
    make_old(fitted_run)
    main(["export", "--ckpt", str(fitted_run), "--format", "torchscript",
          "--output", str(old_export)])  # fmt: skip
    images = torch.randn(3, 1, 28, 28)
    expected = torch.jit.load(str(new_export))(images)
    torch.testing.assert_close(torch.jit.load(str(old_export))(images), expected)
    # With the old run config named explicitly too.
    config = fitted_run.parents[1] / "config.yaml"
    main(["export", "--ckpt", str(fitted_run), "-c", str(config), "--format", "torchscript",
          "--output", str(old_export)])  # fmt: skip
    torch.testing.assert_close(torch.jit.load(str(old_export))(images), expected)
