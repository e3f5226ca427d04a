"""Image classification: any network, cross-entropy, accuracy on train/val/test."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningDataModule
from torch import nn

from litlab.core.classification_task import ClassificationTask
from litlab.core.data_facts import data_facts_of
from litlab.core.errors import LitlabError
from litlab.core.export import DynamicAxis, ExportSpec, TensorSpec
from litlab.core.hparams import module_args_to_ignore
from litlab.core.number_types import (
    NonNegativeFloat,
    NonNegativeInt,
    NumClasses,
    RightOpenUnitInterval,
)
from litlab.vision.callbacks.classification_report import ClassificationReport


class ImageClassifier(ClassificationTask):
    """Trains ``network`` (images -> logits) with cross-entropy and reports accuracy.

    Logs, and picks the best checkpoint, as every
    :class:`~litlab.core.classification_task.ClassificationTask` does. Targets may be class
    indices or, after MixUp/CutMix, class probabilities (B, num_classes). At test time W&B gets
    a confusion matrix and the worst-classified images; ``litlab predict`` writes a CSV.

    Transfer learning needs a model with ``backbone_parameters()``/``head_parameters()`` (and
    ``unfreeze_backbone()`` for a delayed unfreeze), as ``TorchvisionResNet`` has.
    """

    def __init__(
        self,
        network: nn.Module,
        num_classes: NumClasses,
        label_smoothing: RightOpenUnitInterval = 0.0,
        backbone_lr_scale: NonNegativeFloat = 1.0,
        unfreeze_backbone_at_epoch: NonNegativeInt | None = None,
        report_worst: NonNegativeInt = 16,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The network (a ``class_path`` in YAML) mapping images to ``num_classes`` logits.
        num_classes: Number of classes.
        label_smoothing: Cross-entropy label smoothing (0 disables it).
        backbone_lr_scale: LR of the model's backbone relative to ``lr`` (fine-tuning a
            pretrained backbone under a new head, e.g. 0.1).
        unfreeze_backbone_at_epoch: Unfreeze a frozen backbone from this epoch on (feature
            extraction first, then fine-tuning).
        report_worst: Worst-classified test images shown in W&B (0: no test report).
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(num_classes, label_smoothing, **kwargs)
        needs = {
            "backbone_parameters": backbone_lr_scale != 1.0,
            "unfreeze_backbone": unfreeze_backbone_at_epoch is not None,
        }
        for method, needed in needs.items():
            if needed and not hasattr(network, method):
                raise LitlabError(
                    f"{type(network).__name__} has no {method}(): backbone_lr_scale and "
                    f"unfreeze_backbone_at_epoch need a model with a backbone, such as "
                    f"litlab.vision.models.torchvision_resnet.TorchvisionResNet."
                )
        self.save_hyperparameters(logger=False, ignore=module_args_to_ignore("network"))
        self.network = network
        self.backbone_lr_scale = backbone_lr_scale
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.report_worst = report_worst

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def parameter_groups(self) -> list[dict[str, Any]]:
        if self.backbone_lr_scale == 1.0:
            return super().parameter_groups()
        return [
            {"params": self.network.backbone_parameters(), "lr_scale": self.backbone_lr_scale},
            {"params": self.network.head_parameters()},
        ]

    def configure_callbacks(self) -> list[Callback]:
        callbacks = super().configure_callbacks()
        if self.report_worst:
            callbacks.append(ClassificationReport(self.report_worst))
        return callbacks

    def setup(self, stage: str) -> None:
        image_shape = self.data_facts.image_shape
        if image_shape is None:
            return
        if mismatches := _input_mismatches(self.network, tuple(image_shape)):
            built = ", ".join(f"{name}={current}" for name, (current, _) in mismatches.items())
            fixes = ", ".join(
                f"model.init_args.network.init_args.{name}: {value}"
                for name, (_, value) in mismatches.items()
            )
            raise LitlabError(
                f"the data gives images of shape {tuple(image_shape)} but "
                f"{type(self.network).__name__} is built with {built}: set {fixes}."
            )

    def on_train_epoch_start(self) -> None:
        # A frozen backbone stays in the optimizer (frozen parameters get no gradient, so the
        # optimizer skips them); unfreezing only lets gradients flow again.
        epoch = self.unfreeze_backbone_at_epoch
        if epoch is not None and self.current_epoch >= epoch:
            self.network.unfreeze_backbone()

    def _logits(
        self, images: torch.Tensor, stage: str, batch_idx: int, ids: Any = None
    ) -> torch.Tensor:
        try:
            return self(images)
        except ValueError as err:
            # The networks check their input's shape and say which setting fits it.
            names = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids or [])
            samples = f" ({', '.join(map(str, names[:3]))}{' ...' if len(names) > 3 else ''})"
            raise LitlabError(
                f"{stage} batch {batch_idx}{samples if names else ''}: "
                f"{type(self.network).__name__} cannot take images of shape "
                f"{tuple(images.shape[1:])}: {err}"
            ) from err

    def batch_targets(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return batch[1]

    def batch_logits(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, batch_idx: int
    ) -> torch.Tensor:
        return self._logits(batch[0], stage, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        """Batches are ``(images, ids)``: ids name the samples (file names, test indices)."""
        images, ids = batch if isinstance(batch, (list, tuple)) else (batch, None)
        return self.prediction_rows(self._logits(images, "predict", batch_idx, ids), ids)

    # ----- export

    def export_spec(self, datamodule: LightningDataModule | None) -> ExportSpec:
        """``litlab export``: the network, from images ``(batch, C, H, W)`` normalised as the
        DataModule does to logits ``(batch, num_classes)``. The sidecar gets the
        normalisation and the class names when the DataModule has them."""
        facts = data_facts_of(datamodule)
        image_shape = facts.image_shape or _network_image_shape(self.network)
        if image_shape is None:
            raise LitlabError(
                f"{type(self).__name__} cannot be exported: the shape of its input images is "
                f"unknown ({type(self.network).__name__} does not say, and no DataModule with "
                f"image_shape is known). Export a checkpoint of a litlab fit run (its "
                f"config.yaml names the data) or give the training config with -c."
            )
        metadata: dict[str, Any] = {}
        mean, std = facts.mean, facts.std
        if mean is not None and std is not None:
            metadata["preprocessing"] = {
                "pixels": "float32 in [0, 1] (uint8 / 255), then (x - mean) / std per channel",
                "mean": list(mean),
                "std": list(std),
            }
        if classes := facts.classes:
            metadata["class_names"] = list(classes)
        batch = DynamicAxis("batch")
        return ExportSpec(
            network=self.network,
            inputs=(TensorSpec("images", (batch, *image_shape)),),
            outputs=(TensorSpec("logits", (batch, self.num_classes)),),
            metadata=metadata,
        )


def _network_image_shape(model: nn.Module) -> tuple[int, int, int] | None:
    """(C, H, W) of a network built for one image size (SmallCNN, LeNet5), else None."""
    channels, size = getattr(model, "in_channels", None), getattr(model, "image_size", None)
    return (channels, size, size) if isinstance(channels, int) and isinstance(size, int) else None


def _input_mismatches(model: nn.Module, image_shape: tuple[int, ...]) -> dict[str, tuple[int, str]]:
    """The network settings (``in_channels``, ``image_size``, ``in_features``, where it has
    them) that do not fit images of ``image_shape`` (C, H, W): name -> (its value, the value
    that would fit)."""
    channels, height, width = image_shape
    wanted = {
        "in_channels": str(channels),
        "image_size": str(height) if height == width else "(none: the images are not square)",
        "in_features": str(channels * height * width),
    }
    return {
        name: (current, value)
        for name, value in wanted.items()
        if isinstance(current := getattr(model, name, None), int) and str(current) != value
    }
