"""Feed-forward stack of linear layers."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn


class MLP(nn.Sequential):
    """Linear -> [LayerNorm] -> activation -> dropout per hidden layer, then a plain linear output.

    Args:
        in_features: Size of the last input dimension.
        hidden_features: Sizes of the hidden layers (may be empty for a single linear layer).
        out_features: Size of the output.
        activation: Activation class, instantiated once per hidden layer.
        dropout: Dropout probability after each hidden activation.
        norm: Insert a LayerNorm after each hidden linear layer.
        bias: Use biases in the linear and norm layers.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int],
        out_features: int,
        activation: type[nn.Module] = nn.GELU,
        dropout: float = 0.0,
        norm: bool = False,
        bias: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        dims = [in_features, *hidden_features]
        for d_in, d_out in pairwise(dims):
            layers.append(nn.Linear(d_in, d_out, bias=bias))
            if norm:
                layers.append(nn.LayerNorm(d_out, bias=bias))
            layers += [activation(), nn.Dropout(dropout)]
        layers.append(nn.Linear(dims[-1], out_features, bias=bias))
        super().__init__(*layers)
