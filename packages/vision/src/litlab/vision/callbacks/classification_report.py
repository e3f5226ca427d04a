"""What a classifier got wrong on the test set, shown in W&B."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torchmetrics.classification import MulticlassConfusionMatrix

from litlab.core.data_facts import data_facts_of
from litlab.core.number_types import NonNegativeInt


class ClassificationReport(Callback):
    """At test time, logs a confusion matrix and the worst-classified images to W&B.

    "Worst" means the highest cross-entropy: confidently wrong first. Each image is captioned
    with its predicted and true class and the predicted probability. Other loggers get nothing.

    Under DDP both cover every rank's share of the test set: the matrix is a torchmetrics
    metric (summed over the ranks), and each rank's worst images are gathered before the
    global worst are chosen. Lightning's DistributedSampler pads the test set to a multiple
    of the number of ranks by repeating its first samples, so up to ``world_size - 1`` of them
    are counted twice (none when the size divides evenly, as MNIST's 10000 on 2 or 4 devices),
    as in every other synchronised test metric.
    """

    def __init__(self, num_worst: NonNegativeInt = 16) -> None:
        """Args:
        num_worst: How many of the worst-classified test images to show.
        """
        self.num_worst = num_worst

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.confusion: MulticlassConfusionMatrix | None = None
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
        logits, targets = outputs["logits"].float(), outputs["targets"]
        if self.confusion is None:
            # On the logits' device: NCCL gathers only GPU tensors.
            self.confusion = MulticlassConfusionMatrix(logits.shape[-1]).to(logits.device)
        probabilities = logits.softmax(dim=-1)
        self.confusion.update(probabilities.argmax(dim=-1), targets)
        candidates = {
            "loss": torch.nn.functional.cross_entropy(logits, targets, reduction="none"),
            "images": batch[0].detach().float(),
            "targets": targets,
            "probabilities": probabilities,
        }
        if self.worst:
            candidates = {k: torch.cat([self.worst[k], v]) for k, v in candidates.items()}
        keep = candidates["loss"].topk(min(self.num_worst, len(candidates["loss"]))).indices
        self.worst = {k: v[keep] for k, v in candidates.items()}

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The DistributedSampler gives every rank the same number of batches, so all of them
        # take part in the collectives below or none does; which loggers a rank holds plays
        # no part in that.
        if self.confusion is None:
            return
        matrix = self.confusion.compute().cpu()
        worst = self._global_worst(trainer)
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers:
            return
        class_names = _class_names(trainer, matrix.shape[0])
        targets, predictions = _pairs(matrix)
        images, captions = [], []
        for image, target, probs in zip(
            worst["images"], worst["targets"], worst["probabilities"], strict=True
        ):
            predicted = int(probs.argmax())
            images.append(_displayable(image))
            captions.append(
                f"pred {class_names[predicted]} ({probs[predicted]:.2f}), "
                f"true {class_names[int(target)]}"
            )
        for logger in loggers:
            _log_confusion_matrix(
                logger, "test/confusion_matrix", targets, predictions, class_names
            )
            logger.log_image("test/worst_classified", images=images, caption=captions)

    def _global_worst(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        """The ``num_worst`` highest losses over every rank's candidates."""
        # all_gather needs one shape on every rank: a rank that kept fewer than num_worst
        # (fewer test samples than that) fills up with rows of loss -inf, dropped afterwards.
        missing = self.num_worst - len(self.worst["loss"])
        local = {
            k: torch.cat([v, v.new_zeros((missing, *v.shape[1:]))]) for k, v in self.worst.items()
        }
        local["loss"][len(self.worst["loss"]) :] = -torch.inf
        # One process: the tensor back as it is; several: (world_size, num_worst, ...).
        gathered = {
            k: trainer.strategy.all_gather(v).reshape(-1, *v.shape[1:]) for k, v in local.items()
        }
        keep = gathered["loss"].topk(self.num_worst).indices
        keep = keep[gathered["loss"][keep] > -torch.inf]
        return {k: v[keep].cpu() for k, v in gathered.items()}


def _pairs(matrix: torch.Tensor) -> tuple[list[int], list[int]]:
    """(target, prediction) pairs with the counts of ``matrix`` (rows: targets), in the form
    W&B's confusion-matrix chart takes."""
    num_classes = matrix.shape[0]
    cells = torch.arange(num_classes * num_classes).repeat_interleave(matrix.flatten())
    return (cells // num_classes).tolist(), (cells % num_classes).tolist()


def _displayable(image: torch.Tensor) -> Any:
    """A normalised (C, H, W) float image as (H, W[, C]) uint8, stretched to its own range.

    Stretching undoes any per-dataset normalisation well enough to look at; W&B would cast
    floats to uint8 without scaling them.
    """
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0)
    return pixels.squeeze(-1).numpy() if pixels.shape[-1] == 1 else pixels.numpy()


def _class_names(trainer: Trainer, num_classes: int) -> list[str]:
    names = data_facts_of(trainer.datamodule).classes
    return (
        list(names) if names and len(names) == num_classes else [str(i) for i in range(num_classes)]
    )


def _log_confusion_matrix(
    logger: WandbLogger,
    key: str,
    targets: list[int],
    predictions: list[int],
    class_names: list[str],
) -> None:
    """A W&B confusion-matrix chart of integer targets against predictions."""
    import wandb

    chart = wandb.plot.confusion_matrix(
        y_true=targets, preds=predictions, class_names=class_names, title=key
    )
    logger.experiment.log({key: chart})
