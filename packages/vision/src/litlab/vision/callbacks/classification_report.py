"""What a classifier got wrong on the test set, shown in W&B."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from litlab.core.number_types import NonNegativeInt
from litlab.core.tracking import WandbLogger


class ClassificationReport(Callback):
    """At test time, logs a confusion matrix and the worst-classified images to W&B.

    "Worst" means the highest cross-entropy: confidently wrong first. Each image is captioned
    with its predicted and true class and the predicted probability. Other loggers get nothing.
    """

    def __init__(self, num_worst: NonNegativeInt = 16) -> None:
        """Args:
        num_worst: How many of the worst-classified test images to show.
        """
        self.num_worst = num_worst

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.targets: list[torch.Tensor] = []
        self.predictions: list[torch.Tensor] = []
        self.worst: dict[str, torch.Tensor] = {}

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "logits" not in outputs:
            return
        logits, targets = outputs["logits"].float().cpu(), outputs["targets"].cpu()
        probabilities = logits.softmax(dim=-1)
        self.targets.append(targets)
        self.predictions.append(probabilities.argmax(dim=-1))
        candidates = {
            "loss": torch.nn.functional.cross_entropy(logits, targets, reduction="none"),
            "images": batch[0].detach().float().cpu(),
            "targets": targets,
            "probabilities": probabilities,
        }
        if self.worst:
            candidates = {k: torch.cat([self.worst[k], v]) for k, v in candidates.items()}
        keep = candidates["loss"].topk(min(self.num_worst, len(candidates["loss"]))).indices
        self.worst = {k: v[keep] for k, v in candidates.items()}

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or not self.targets:
            return
        class_names = _class_names(trainer, self.worst["probabilities"].shape[1])
        targets = torch.cat(self.targets).tolist()
        predictions = torch.cat(self.predictions).tolist()
        images, captions = [], []
        for image, target, probs in zip(
            self.worst["images"], self.worst["targets"], self.worst["probabilities"], strict=True
        ):
            predicted = int(probs.argmax())
            images.append(_displayable(image))
            captions.append(
                f"pred {class_names[predicted]} ({probs[predicted]:.2f}), "
                f"true {class_names[int(target)]}"
            )
        for logger in loggers:
            logger.log_confusion_matrix("test/confusion_matrix", targets, predictions, class_names)
            logger.log_image("test/worst_classified", images=images, caption=captions)


def _displayable(image: torch.Tensor) -> Any:
    """A normalised (C, H, W) float image as (H, W[, C]) uint8, stretched to its own range.

    Stretching undoes any per-dataset normalisation well enough to look at; W&B would cast
    floats to uint8 without scaling them.
    """
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0)
    return pixels.squeeze(-1).numpy() if pixels.shape[-1] == 1 else pixels.numpy()


def _class_names(trainer: Trainer, num_classes: int) -> list[str]:
    names = getattr(trainer.datamodule, "classes", None)
    return (
        list(names) if names and len(names) == num_classes else [str(i) for i in range(num_classes)]
    )
