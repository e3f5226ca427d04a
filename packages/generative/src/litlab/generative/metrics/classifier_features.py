"""A trained litlab image classifier as the feature network of sample metrics (FID, KID,
label confidence): penultimate-layer features and class probabilities of [0, 1] images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from litlab.core.checkpoints.class_import import import_class
from litlab.core.checkpoints.run_lookup import run_config_file
from litlab.core.checkpoints.task_loading import load_task
from litlab.core.checkpoints.upgrade import upgrade_config
from litlab.core.errors import LitlabError
from litlab.vision.data.image_classification import PIXEL_RANGE_STATISTICS

SAVE_CLASSIFIER_HINT = (
    "save classifiers with `litlab fit`, e.g. "
    "uv run litlab fit -c experiments/vision/mnist_cnn.yaml"
)


class ClassifierFeatures(nn.Module):
    """Wraps a classification network (images -> logits ending in an ``nn.Linear``) so that
    images in [0, 1] give its penultimate-layer features (``forward``) and class probabilities.

    The features are the input of the network's last ``nn.Linear`` (in registration order),
    caught by a forward hook, so any network whose output is that layer's output works:
    SmallCNN, MLPClassifier, LeNet5, the ResNets. Inputs are normalised with the ``mean``/``std``
    the classifier was trained with. The network stays in eval mode and is never trained.
    ``num_features`` is set, as torchmetrics' FID/KID read it for a custom feature network.
    """

    def __init__(
        self,
        network: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        name: str = "classifier",
    ) -> None:
        """Args:
        network: The classifier (images -> logits), e.g. an ImageClassifier's ``model``.
        mean: Per-channel mean the classifier's inputs were standardised with.
        std: Per-channel standard deviation the classifier's inputs were standardised with.
        name: The feature network's name, put into metric keys (``fid_<name>``).
        """
        super().__init__()
        linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise LitlabError(
                f"{type(network).__name__} has no nn.Linear layer: classifier features are the "
                f"input of the final Linear layer, so the classifier must end in one."
            )
        if len(mean) != len(std):
            raise LitlabError(f"mean and std must have one value per channel, got {mean}, {std}")
        self.network = network.eval().requires_grad_(False)
        self.head = linears[-1]
        self.num_features = self.head.in_features
        self.num_classes = self.head.out_features
        self.name = name
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def train(self, mode: bool = True) -> ClassifierFeatures:
        # A frozen evaluation network: dropout and batch-norm statistics must never switch on.
        return super().train(False)

    def features_and_probabilities(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, num_features) and class probabilities (N, num_classes) of
        images (N, C, H, W) in [0, 1]."""
        if images.dim() != 4 or images.shape[1] != self.mean.shape[1]:
            raise LitlabError(
                f"the classifier {self.name!r} expects images (N, {self.mean.shape[1]}, H, W), "
                f"got {tuple(images.shape)}"
            )
        caught: dict[str, torch.Tensor] = {}

        def catch(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
            caught["features"], caught["logits"] = inputs[0], output

        handle = self.head.register_forward_hook(catch)
        try:
            logits = self.network((images.float() - self.mean) / self.std)
        finally:
            handle.remove()
        if caught.get("logits") is not logits:
            raise LitlabError(
                f"the last nn.Linear of {type(self.network).__name__} does not produce its "
                f"output, so its input is not the penultimate layer; classifier features need "
                f"a network that ends in its last Linear layer."
            )
        return caught["features"].flatten(1), logits.softmax(dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_probabilities(images)[0]

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, num_classes) of images (N, C, H, W) in [0, 1]."""
        return self.features_and_probabilities(images)[1]

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str | None = None,
    ) -> ClassifierFeatures:
        """Loads a classifier task saved by ``litlab fit`` (any task with the network as its
        ``model``, e.g. litlab.vision's image classifier) by the class its checkpoint names.

        The normalisation comes from ``mean``/``std`` when given, else from the datamodule
        hyperparameters saved in the checkpoint, else from the run's ``config.yaml`` beside
        the ``checkpoints/`` folder (its ``data`` class and ``pixel_range``).

        Args:
            path: The ``.ckpt`` file.
            mean: Per-channel mean the classifier was trained with (overrides what was saved).
            std: Per-channel std the classifier was trained with (overrides what was saved).
            name: Name of the feature network; default: the run's experiment name, else the
                checkpoint file's stem.
        """
        path = Path(path)
        if (mean is None) != (std is None):
            raise LitlabError(
                "give both the mean and the std of the classifier's inputs, or neither"
            )
        if not path.is_file():
            raise LitlabError(f"classifier checkpoint not found: {path}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        run_config = _run_config(path)
        task = load_task(path, checkpoint, how_to_save=SAVE_CLASSIFIER_HINT)
        if mean is None or std is None:
            mean, std = _saved_normalisation(path, checkpoint, run_config)
        network = getattr(task, "network", task)
        return cls(network, mean, std, name or run_config.get("experiment") or path.stem)


def _run_config(path: Path) -> dict[str, Any]:
    """The resolved config of the run the checkpoint belongs to, or {} outside a run folder."""
    config_file = run_config_file(path)
    if config_file is None:
        return {}
    config = yaml.safe_load(config_file.read_text())
    # A run config of an earlier litlab names some classes where they were then.
    return upgrade_config(config)[0] if isinstance(config, dict) else {}


def _saved_normalisation(
    path: Path, checkpoint: dict[str, Any], run_config: dict[str, Any]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    datamodule = checkpoint.get("datamodule_hyper_parameters") or {}
    if "_class_path" in datamodule:
        return _datamodule_normalisation(datamodule["_class_path"], datamodule, path)
    data = run_config.get("data") or {}
    if isinstance(data, dict) and "class_path" in data:
        return _datamodule_normalisation(data["class_path"], data.get("init_args") or {}, path)
    raise LitlabError(
        f"cannot tell how the classifier {path} normalised its inputs: neither the checkpoint "
        f"nor a run config.yaml beside its checkpoints/ folder names its datamodule. Give the "
        f"mean and std it was trained with (e.g. MNIST: mean [0.1307], std [0.3081])."
    )


def _datamodule_normalisation(
    class_path: str, init_args: dict[str, Any], path: Path
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    datamodule_class = import_class(class_path, path)
    mean, std = getattr(datamodule_class, "mean", None), getattr(datamodule_class, "std", None)
    if mean is None or std is None:
        raise LitlabError(
            f"the classifier {path} was trained on {class_path}, which has no mean/std "
            f"attributes; give the mean and std it normalised its images with."
        )
    # The signature's default: configs saved before pixel_range existed standardised.
    pixel_range = init_args.get("pixel_range") or "standardized"
    if pixel_range in PIXEL_RANGE_STATISTICS:
        shift, scale = PIXEL_RANGE_STATISTICS[pixel_range]
        return (shift,) * len(mean), (scale,) * len(std)
    return tuple(mean), tuple(std)
