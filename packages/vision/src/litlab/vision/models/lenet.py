"""LeNet-5 (LeCun et al., 1998, "Gradient-based learning applied to document recognition")."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from litlab.core.number_types import NonNegativeInt, PositiveInt

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
_POOLS: dict[str, type[nn.Module]] = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    """LeNet-5 as commonly implemented: C1 conv 6@5x5, S2 pool, C3 conv 16@5x5, S4 pool,
    C5 fc 120, F6 fc 84, output fc ``num_classes``.

    Simplifications of the paper, as usual: C3 connects to all six S2 maps (the paper uses a
    sparse table), the pools have no trainable coefficients, and the output is a linear layer
    instead of Euclidean RBF units. The paper's 32x32 input is MNIST's 28x28 padded by 2, which
    is what ``padding=2`` does on C1; with 10 classes that is 61,706 parameters.
    """

    def __init__(
        self,
        in_channels: PositiveInt = 1,
        num_classes: PositiveInt = 10,
        image_size: PositiveInt = 28,
        padding: NonNegativeInt = 2,
        activation: Literal["tanh", "relu"] = "tanh",
        pooling: Literal["avg", "max"] = "avg",
    ) -> None:
        """Args:
        in_channels: Image channels (1 for MNIST).
        num_classes: Number of output logits.
        image_size: Height and width of the (square) input images.
        padding: Zero padding of C1: 2 for 28x28 images, 0 for 32x32 (the paper's input).
        activation: ``"tanh"`` as in the paper, or ``"relu"``.
        pooling: Subsampling by ``"avg"`` (the paper's S2/S4) or ``"max"`` pooling.
        """
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if pooling not in _POOLS:
            raise ValueError(f"pooling must be one of {sorted(_POOLS)}, got {pooling!r}")
        self.in_channels = in_channels
        self.image_size = image_size
        # C1 (5x5) -> S2 (/2) -> C3 (5x5) -> S4 (/2): 32 -> 28 -> 14 -> 10 -> 5 for the paper.
        feature_size = ((image_size + 2 * padding - 4) // 2 - 4) // 2
        if feature_size < 1:
            raise ValueError(
                f"image_size={image_size} with padding={padding} is too small for LeNet-5; "
                "C1 needs at least 16x16 after padding"
            )
        act, pool = _ACTIVATIONS[activation], _POOLS[pooling]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding),
            act(),
            pool(2),
            nn.Conv2d(6, 16, 5),
            act(),
            pool(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * feature_size**2, 120),
            act(),
            nn.Linear(120, 84),
            act(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"LeNet5 expects images of shape (B, {', '.join(map(str, expected))}), got "
                f"{tuple(x.shape)}; set model.init_args.in_channels and image_size to match."
            )
        return self.classifier(self.features(x))
