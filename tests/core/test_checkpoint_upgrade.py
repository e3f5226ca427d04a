"""Checkpoints and configs of an earlier litlab, whose tasks took their network as ``model``
(hyperparameter ``model``, state_dict keys ``model.*``) and whose application lived in
litlab.core, still load: through Task.load_from_checkpoint, a Trainer's restore, read_checkpoint
and load_task, with the same weights and outputs."""

from __future__ import annotations

import io
from pathlib import Path

import lightning
import pytest
import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.checkpoints.checks import read_checkpoint, stamp_checkpoint
from litlab.core.checkpoints.task_loading import load_task
from litlab.core.checkpoints.upgrade import (
    upgrade_checkpoint,
    upgrade_class_path,
    upgrade_config,
    upgrade_config_text,
)
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.tasks.classification import ImageClassifier

TASK = "litlab.vision.tasks.classification.ImageClassifier"
MLP = "litlab.vision.models.mlp.MLPClassifier"
MLP_ARGS = {"in_features": 12, "hidden_features": [8], "num_classes": 3}


def new_task() -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier(MLPClassifier(**MLP_ARGS), num_classes=3, report_worst=0).eval()


def cli_checkpoint(task: ImageClassifier) -> dict:
    """A checkpoint as `litlab fit` writes it: LightningCLI's hyperparameters (the task's
    class path and its arguments, the network as a class_path), the weights, litlab's stamp."""
    checkpoint = {
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": task.state_dict(),
        "hyper_parameters": {
            "_class_path": TASK,
            "_instantiator": "lightning.pytorch.cli.instantiate_module",
            "network": {"class_path": MLP, "init_args": dict(MLP_ARGS)},
            "num_classes": 3,
            "report_worst": 0,
        },
    }
    task.on_save_checkpoint(checkpoint)
    return checkpoint


def made_old(checkpoint: dict) -> dict:
    """The same checkpoint as an earlier litlab wrote it: ``model`` for ``network``."""
    hparams = checkpoint.get("hyper_parameters")
    if hparams is not None and "network" in hparams:
        hparams["model"] = hparams.pop("network")
    for key in ("state_dict", "current_model_state"):
        if key in checkpoint:
            checkpoint[key] = {
                name.replace("network.", "model.", 1): value
                for name, value in checkpoint[key].items()
            }
    return checkpoint


@pytest.fixture
def old_checkpoint(tmp_path) -> Path:
    path = tmp_path / "old.ckpt"
    torch.save(made_old(cli_checkpoint(new_task())), path)
    return path


def outputs(task: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return task(torch.linspace(-1, 1, 24).reshape(2, 12))


def test_the_old_checkpoint_is_old(old_checkpoint):
    saved = torch.load(old_checkpoint, weights_only=True)
    assert "model" in saved["hyper_parameters"]
    assert "network" not in saved["hyper_parameters"]
    assert all(name.startswith("model.") for name in saved["state_dict"])


def test_load_from_checkpoint_of_an_old_checkpoint(old_checkpoint):
    loaded = ImageClassifier.load_from_checkpoint(old_checkpoint, map_location="cpu")
    assert isinstance(loaded.network, MLPClassifier)
    assert loaded.network.mlp[0].out_features == 8
    torch.testing.assert_close(outputs(loaded.eval()), outputs(new_task()), rtol=0, atol=0)


def test_load_from_checkpoint_of_an_old_checkpoint_in_memory(old_checkpoint):
    buffer = io.BytesIO(old_checkpoint.read_bytes())
    loaded = ImageClassifier.load_from_checkpoint(buffer, map_location="cpu")
    torch.testing.assert_close(outputs(loaded.eval()), outputs(new_task()), rtol=0, atol=0)


def test_a_network_given_by_the_caller_wins(old_checkpoint):
    network = MLPClassifier(12, [8], 3)
    loaded = ImageClassifier.load_from_checkpoint(old_checkpoint, network=network)
    assert loaded.network is network
    torch.testing.assert_close(outputs(loaded.eval()), outputs(new_task()), rtol=0, atol=0)


def test_a_python_saved_old_checkpoint_loads_its_weights(tmp_path):
    """Saved from Python (no network in the hyperparameters): the caller gives the network,
    the hook renames the weights."""
    task = new_task()
    checkpoint = made_old(
        {"pytorch-lightning_version": lightning.__version__, "state_dict": task.state_dict()}
    )
    stamp_checkpoint(checkpoint, task)
    torch.save(checkpoint, tmp_path / "python.ckpt")
    loaded = ImageClassifier.load_from_checkpoint(
        tmp_path / "python.ckpt", network=MLPClassifier(12, [8], 3), num_classes=3
    )
    torch.testing.assert_close(outputs(loaded.eval()), outputs(task), rtol=0, atol=0)


def test_a_trainer_restores_an_old_checkpoint(old_checkpoint, tmp_path):
    """Trainer(...).validate(task, ckpt_path=old) with Lightning's own checkpoint loading: the
    task's on_load_checkpoint renames the weights before Lightning loads them."""
    task = ImageClassifier(MLPClassifier(**MLP_ARGS), num_classes=3, report_worst=0)
    data = DataLoader(TensorDataset(torch.randn(4, 12), torch.tensor([0, 1, 2, 0])), batch_size=4)
    trainer = Trainer(
        default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.validate(task, data, ckpt_path=old_checkpoint, verbose=False, weights_only=False)
    torch.testing.assert_close(outputs(task.eval()), outputs(new_task()), rtol=0, atol=0)


def test_read_checkpoint_upgrades_and_leaves_the_file(old_checkpoint, caplog):
    before = old_checkpoint.read_bytes()
    with caplog.at_level("INFO"):
        checkpoint = read_checkpoint(old_checkpoint)
    assert "network" in checkpoint["hyper_parameters"]
    assert "model" not in checkpoint["hyper_parameters"]
    assert set(checkpoint["state_dict"]) == set(new_task().state_dict())
    assert "written by an earlier litlab" in caplog.text
    assert old_checkpoint.read_bytes() == before


def test_load_task_of_an_old_checkpoint(old_checkpoint):
    checkpoint = torch.load(old_checkpoint, weights_only=False)
    task = load_task(old_checkpoint, checkpoint, how_to_save="")
    torch.testing.assert_close(outputs(task.eval()), outputs(new_task()), rtol=0, atol=0)


def test_a_current_checkpoint_is_left_as_it_is():
    checkpoint = cli_checkpoint(new_task())
    names = list(checkpoint["state_dict"])
    assert upgrade_checkpoint(checkpoint) == []
    assert list(checkpoint["state_dict"]) == names
    assert checkpoint["hyper_parameters"]["network"]["class_path"] == MLP


def test_weight_averaging_keeps_its_live_weights_renamed_too():
    """Lightning's WeightAveraging saves the average as state_dict and the live weights as
    current_model_state: both name the network."""
    checkpoint = cli_checkpoint(new_task())
    checkpoint["current_model_state"] = dict(checkpoint["state_dict"])
    checkpoint = made_old(checkpoint)
    upgrade_checkpoint(checkpoint)
    assert all(name.startswith("network.") for name in checkpoint["current_model_state"])
    assert list(checkpoint["state_dict"]) == list(new_task().state_dict())


class ModelHolder(LightningModule):
    """Not a litlab task: its own ``model`` argument and attribute are not renamed."""

    def __init__(self, model: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model or nn.Linear(2, 2)


def test_other_modules_keep_their_model():
    module = ModelHolder()
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": {"model": None}}
    checkpoint["hyper_parameters"]["_class_path"] = f"{__name__}.ModelHolder"
    assert upgrade_checkpoint(checkpoint) == []
    assert upgrade_checkpoint(checkpoint, module) == []
    assert set(checkpoint["state_dict"]) == {"model.weight", "model.bias"}
    section = {"class_path": f"{__name__}.ModelHolder", "init_args": {"model": None}}
    assert upgrade_config({"model": section}) == ({"model": section}, [])


def test_moved_class_paths():
    assert upgrade_class_path("litlab.core.tracking.WandbLogger") == (
        "litlab.app.tracking.WandbLogger"
    )
    assert upgrade_class_path("litlab.core.sweeps.trial_callback.X") == (
        "litlab.app.sweeps.trial_callback.X"
    )
    assert upgrade_class_path("litlab.core.class_paths.import_class") == (
        "litlab.core.checkpoints.class_import.import_class"
    )
    for unmoved in (TASK, "litlab.core.schedulers.WarmupCosineLR", "torch.optim.AdamW"):
        assert upgrade_class_path(unmoved) == unmoved


OLD_RUN_CONFIG = f"""\
seed_everything: 42
model:
  class_path: {TASK}
  init_args:
    model:
      class_path: {MLP}
      init_args: {{in_features: 784, hidden_features: [16], num_classes: 10}}
    num_classes: 10
trainer:
  logger:
    class_path: litlab.core.tracking.WandbLogger
    init_args: {{project: litlab}}
  callbacks:
  - class_path: litlab.core.callbacks.resource_report.ResourceReport
experiment: mnist_mlp
"""


def test_an_old_run_config_is_upgraded():
    text, changes = upgrade_config_text(OLD_RUN_CONFIG)
    config, again = upgrade_config_text(text)
    assert again == []
    assert config == text
    assert changes == [
        "model.init_args.model -> model.init_args.network",
        "litlab.core.tracking.WandbLogger -> litlab.app.tracking.WandbLogger",
    ]
    new, _ = upgrade_config(yaml.safe_load(OLD_RUN_CONFIG))
    assert list(new["model"]["init_args"]) == ["network", "num_classes"]
    assert new["model"]["init_args"]["network"]["class_path"] == MLP
    assert new["trainer"]["logger"]["class_path"] == "litlab.app.tracking.WandbLogger"
    assert new["trainer"]["callbacks"][0]["class_path"].startswith("litlab.core.callbacks.")
