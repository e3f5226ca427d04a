"""How a classifier labels generated images: how confidently, and how evenly over the classes."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric


class PredictedLabelStatistics(Metric):
    """From class probabilities (N, num_classes) of a classifier on generated images:

    - ``confident_share``: the share of images whose top probability is above ``threshold``
      (recognisable digits rather than blends);
    - ``label_histogram``: the share of images given each label (argmax);
    - ``label_entropy``: the entropy of that histogram divided by ``log(num_classes)``: 1 when
      every class is predicted equally often, 0 when all images get one label (mode collapse).
    """

    full_state_update = False

    def __init__(self, num_classes: int, threshold: float = 0.9) -> None:
        """Args:
        num_classes: Number of classes of the classifier.
        threshold: An image counts as confidently labelled above this top probability.
        """
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = num_classes
        self.threshold = threshold
        self.add_state("label_counts", torch.zeros(num_classes, dtype=torch.long), "sum")
        self.add_state("confident", torch.tensor(0, dtype=torch.long), "sum")

    def update(self, probabilities: torch.Tensor) -> None:
        if probabilities.dim() != 2 or probabilities.shape[1] != self.num_classes:
            raise ValueError(
                f"expected probabilities of shape (N, {self.num_classes}), got "
                f"{tuple(probabilities.shape)}"
            )
        confidence, labels = probabilities.max(dim=1)
        self.label_counts += torch.bincount(labels, minlength=self.num_classes)
        self.confident += (confidence > self.threshold).sum()

    def compute(self) -> dict[str, torch.Tensor]:
        total = self.label_counts.sum()
        if total == 0:
            raise ValueError("PredictedLabelStatistics has seen no images")
        histogram = self.label_counts.double() / total
        # entr(p) = -p log p, 0 at p = 0: classes never predicted add nothing.
        entropy = torch.special.entr(histogram).sum()
        return {
            "confident_share": (self.confident.double() / total).float(),
            "label_entropy": (entropy / math.log(self.num_classes)).float(),
            "label_histogram": histogram.float(),
        }
