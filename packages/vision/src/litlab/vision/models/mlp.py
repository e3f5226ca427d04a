"""A multilayer perceptron on flattened images."""

from __future__ import annotations

import torch
from torch import nn

from litlab.core.layers import MLP
from litlab.core.number_types import PositiveInt, RightOpenUnitInterval


class MLPClassifier(nn.Module):
    """Flattens an image and classifies it with an MLP (ReLU, dropout between layers)."""

    def __init__(
        self,
        in_features: PositiveInt = 784,
        hidden_features: list[PositiveInt] | None = None,
        num_classes: PositiveInt = 10,
        dropout: RightOpenUnitInterval = 0.2,
    ) -> None:
        """Args:
        in_features: Pixels per image (channels x height x width); 784 for MNIST.
        hidden_features: Width of each hidden layer; default two layers of 1024.
        num_classes: Number of output logits.
        dropout: Dropout after each hidden layer.
        """
        super().__init__()
        self.in_features = in_features
        self.mlp = MLP(
            in_features,
            hidden_features if hidden_features is not None else [1024, 1024],
            num_classes,
            activation=nn.ReLU,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"MLPClassifier expects images of {self.in_features} values each, got "
                f"{x.shape[1]}; set model.init_args.in_features to channels*height*width."
            )
        return self.mlp(x)
