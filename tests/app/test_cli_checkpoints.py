"""`litlab ... --ckpt_path X` with a file that is corrupt or made for another model: one line
naming the file; and what every run gets: atomic checkpoints that record their maker, and a
stop at a NaN loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from fake_datasets import write_fake_mnist_like

from litlab.app.cli import LitlabCLI, main
from litlab.core.callbacks import NonFiniteLossGuard
from litlab.core.checkpoint_io import AtomicCheckpointIO
from litlab.core.checkpoints.checks import STAMP_KEY, litlab_version, stamp_checkpoint
from litlab.vision.models.cnn import SmallCNN
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.tasks.classification import ImageClassifier

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = str(REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml")
TASK = "litlab.vision.tasks.classification.ImageClassifier"
# mnist_mlp with one hidden layer of 16: small checkpoints.
TINY_MLP = ["-c", MNIST_MLP, "--model.network.init_args.hidden_features", "[16]"]


pytestmark = pytest.mark.usefixtures("cli_process")


def run_cli_error(*args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    message = str(exit_info.value.code)
    assert message.startswith("litlab: error: ")
    assert len(message.splitlines()) == 1, message
    return message


def save_task(
    path: Path, network: torch.nn.Module, state_dict: dict | None = None, **extra
) -> Path:
    """A checkpoint of ImageClassifier(network) as a plain script would save it: weights and
    litlab's stamp, no hyperparameters (LightningCLI would rebuild the model from those)."""
    task = ImageClassifier(network, num_classes=10)
    checkpoint = {"state_dict": task.state_dict() if state_dict is None else state_dict, **extra}
    stamp_checkpoint(checkpoint, task)
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def good_checkpoint(tmp_path) -> Path:
    return save_task(tmp_path / "good.ckpt", MLPClassifier(784, [16], 10))


@pytest.mark.parametrize("verb", ["fit", "test"])
def test_truncated_checkpoint(verb, good_checkpoint):
    good_checkpoint.write_bytes(good_checkpoint.read_bytes()[:2000])
    message = run_cli_error(verb, *TINY_MLP, "--ckpt_path", str(good_checkpoint))
    assert f"checkpoint {good_checkpoint} is corrupt or truncated" in message
    assert "Use another checkpoint" in message


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    message = run_cli_error("validate", *TINY_MLP, "--ckpt_path", str(path))
    assert f"checkpoint {path} is corrupt or truncated" in message


def test_checkpoint_of_another_model_class(tmp_path):
    path = save_task(tmp_path / "cnn.ckpt", SmallCNN(channels=[4], hidden=8))
    message = run_cli_error("test", *TINY_MLP, "--ckpt_path", str(path))
    assert f"checkpoint {path} does not fit the model the config builds" in message
    missing = "missing from it: network.mlp.0.bias, network.mlp.0.weight, network.mlp.3.bias"
    assert missing in message
    assert "it was made by ImageClassifier(SmallCNN), the config builds " in message
    assert "ImageClassifier(MLPClassifier)" in message


def test_renamed_key(tmp_path):
    state = ImageClassifier(MLPClassifier(784, [16], 10), num_classes=10).state_dict()
    state["network.mlp.0.kernel"] = state.pop("network.mlp.0.weight")
    path = save_task(tmp_path / "renamed.ckpt", MLPClassifier(784, [16], 10), state)
    message = run_cli_error("predict", *TINY_MLP, "--ckpt_path", str(path))
    assert f"checkpoint {path}" in message
    assert "1 tensor(s) missing from it: network.mlp.0.weight" in message
    assert "1 tensor(s) not in the model: network.mlp.0.kernel" in message
    assert "made by" not in message


def test_shape_mismatch(tmp_path):
    path = save_task(tmp_path / "wide.ckpt", MLPClassifier(784, [32], 10))
    message = run_cli_error("test", *TINY_MLP, "--ckpt_path", str(path))
    assert f"checkpoint {path}" in message
    assert "network.mlp.0.weight (32, 784) (model: (16, 784))" in message


def test_run_folder_config_is_suggested(tmp_path):
    run = tmp_path / "runs" / "mnist_mlp" / "20260101-000000-abcdefgh"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    path = save_task(run / "checkpoints" / "best.ckpt", MLPClassifier(784, [32], 10))
    message = run_cli_error("test", *TINY_MLP, "--ckpt_path", str(path))
    assert f"(-c {run / 'config.yaml'})" in message


def hparams(**changes) -> dict:
    """The hyperparameters LightningCLI saves for TINY_MLP, with ``changes``."""
    mlp = "litlab.vision.models.mlp.MLPClassifier"
    network = {"class_path": mlp, "init_args": {"in_features": 784, "hidden_features": [16]}}
    saved = {"_class_path": TASK, "network": network, "num_classes": 10, "lr": 0.002}
    saved.update(changes)
    return saved


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"removed_arg": 1}, "ImageClassifier takes no argument removed_arg"),
        (
            {"network": {"class_path": "litlab.vision.models.mlp.MLPClassifier",
                       "init_args": {"old_width": 3}}},
            "MLPClassifier takes no argument network.old_width",
        ),
        ({"_class_path": "litlab.vision.tasks.gone.Classifier"}, "cannot be imported"),
    ],
    ids=["task argument", "network argument", "moved class"],
)  # fmt: skip
def test_hyperparameters_of_another_version(tmp_path, changes, named):
    path = save_task(
        tmp_path / "old.ckpt", MLPClassifier(784, [16], 10), hyper_parameters=hparams(**changes)
    )
    checkpoint = torch.load(path, weights_only=True)
    checkpoint[STAMP_KEY]["version"] = "0.0.1"
    torch.save(checkpoint, path)
    message = run_cli_error("test", *TINY_MLP, "--ckpt_path", str(path))
    assert f"checkpoint {path} was made by a model this litlab cannot rebuild" in message
    assert named in message
    assert f"written by litlab-core 0.0.1, this is {litlab_version()}" in message


def tiny_fit_args(data_root: Path, runs: Path) -> list[str]:
    return [
        *TINY_MLP,
        "--data.init_args.data_dir", str(data_root),
        "--data.init_args.val_size", "100",
        "--data.init_args.num_workers", "0",
        "--data.init_args.download", "false",
        "--trainer.max_steps", "3",
        "--trainer.limit_val_batches", "1",
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--runs_root", str(runs),
    ]  # fmt: skip


def test_a_run_gets_atomic_stamped_checkpoints_and_the_nan_guard(tmp_path):
    write_fake_mnist_like(tmp_path / "data", "MNIST")
    cli = LitlabCLI(args=["fit", *tiny_fit_args(tmp_path / "data", tmp_path / "runs")])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    guards = [c for c in cli.trainer.callbacks if isinstance(c, NonFiniteLossGuard)]
    assert [g.action for g in guards] == ["stop"]
    (last,) = (tmp_path / "runs" / "mnist_mlp").glob("*/checkpoints/last.ckpt")
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint[STAMP_KEY] == {
        "version": litlab_version(),
        "task": TASK,
        "network": "litlab.vision.models.mlp.MLPClassifier",
    }
    assert checkpoint["global_step"] == 3
    # The check passes on the real thing, and Lightning then loads it.
    cli = LitlabCLI(args=["validate", *tiny_fit_args(tmp_path / "data", tmp_path / "runs"),
                          "--ckpt_path", "last"])  # fmt: skip
    assert cli.trainer.ckpt_path == str(last)


def test_a_configured_guard_replaces_the_default(tmp_path):
    write_fake_mnist_like(tmp_path / "data", "MNIST")
    config = tmp_path / "guard.yaml"
    guard = {"class_path": "litlab.core.callbacks.NonFiniteLossGuard"}
    guard["init_args"] = {"action": "skip", "max_skips": 3}
    config.write_text(yaml.safe_dump({"trainer": {"callbacks": [guard]}}))
    args = [*tiny_fit_args(tmp_path / "data", tmp_path / "runs"), "-c", str(config)]
    cli = LitlabCLI(args=["fit", *args, "--trainer.max_steps", "1"])
    guards = [c for c in cli.trainer.callbacks if isinstance(c, NonFiniteLossGuard)]
    assert [(g.action, g.max_skips) for g in guards] == [("skip", 3)]


def test_a_diverging_run_stops_with_one_line(tmp_path):
    write_fake_mnist_like(tmp_path / "data", "MNIST")
    runs = tmp_path / "runs"
    # AdamW's first step moves every weight by about lr: the logits overflow at once.
    message = run_cli_error("fit", *tiny_fit_args(tmp_path / "data", runs), "--model.lr", "1e38")
    assert "the training loss is NaN at global step 1 (epoch 0, batch 1)" in message
    assert "No checkpoint was written before it" in message
    assert not list(runs.glob("*/*/checkpoints/*.ckpt"))
