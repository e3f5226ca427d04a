"""The small CNN of the classic tutorials: conv-ReLU-pool stages, then linear layers."""

from __future__ import annotations

import torch
from torch import nn

from litlab.core.layers import MLP
from litlab.core.number_types import NonNegativeInt, PositiveInt, RightOpenUnitInterval


class SmallCNN(nn.Module):
    """Per entry of ``channels``: (Conv3x3-[BatchNorm]-ReLU) x ``convs_per_stage``, MaxPool2;
    then flatten, dropout, Linear-ReLU-dropout, Linear.

    With ``convs_per_stage=1`` this is the net of Keras' ``mnist_convnet`` and PyTorch's
    ``examples/mnist``. The default doubles the convs per stage (VGG style, 0.47M parameters):
    measured in 3 epochs on MNIST (batch 128, AdamW, weight decay 0.01) it reaches 99.3% test
    accuracy with per-epoch cosine decay from lr 1e-3 and 99.4% with one-cycle (max lr 3e-3),
    where one conv per stage stays near 98.9-99.2%. Convolutions use padding 1, so each stage
    only halves the image (rounding down); the flattened size follows from ``image_size``.
    """

    def __init__(
        self,
        in_channels: PositiveInt = 1,
        num_classes: PositiveInt = 10,
        image_size: PositiveInt = 28,
        channels: list[PositiveInt] | None = None,
        hidden: NonNegativeInt = 128,
        dropout: RightOpenUnitInterval = 0.25,
        hidden_dropout: RightOpenUnitInterval = 0.5,
        batch_norm: bool = True,
        convs_per_stage: PositiveInt = 2,
    ) -> None:
        """Args:
        in_channels: Image channels (1 for MNIST, 3 for CIFAR).
        num_classes: Number of output logits.
        image_size: Height and width of the (square) input images.
        channels: Output channels of each conv-ReLU-pool stage; default ``[32, 64]``.
        hidden: Width of the hidden linear layer; 0 for a single linear layer after the convs.
        dropout: Dropout on the flattened conv features.
        hidden_dropout: Dropout after the hidden linear layer.
        batch_norm: BatchNorm after each convolution (steadier and faster training).
        convs_per_stage: Conv-[BN]-ReLU layers before each pool; 1 is the tutorials' net.
        """
        super().__init__()
        channels = channels if channels is not None else [32, 64]
        if not channels:
            raise ValueError("channels must list at least one conv stage, e.g. [32, 64]")
        if convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be at least 1, got {convs_per_stage}")
        self.in_channels = in_channels
        self.image_size = image_size
        feature_size = image_size // 2 ** len(channels)
        if feature_size < 1:
            raise ValueError(
                f"image_size={image_size} is too small for {len(channels)} pooling stages "
                f"(each halves it); use fewer channels entries or larger images"
            )

        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            for _ in range(convs_per_stage):
                # A conv bias before BatchNorm is cancelled by its mean subtraction.
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU(inplace=True))
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            MLP(
                c_in * feature_size**2,
                [hidden] if hidden > 0 else [],
                num_classes,
                activation=nn.ReLU,
                dropout=hidden_dropout,
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SmallCNN expects images of shape (B, {', '.join(map(str, expected))}), got "
                f"{tuple(x.shape)}; set model.init_args.in_channels and image_size to match."
            )
        return self.classifier(self.features(x))
