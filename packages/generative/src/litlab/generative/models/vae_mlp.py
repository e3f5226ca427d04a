"""The fully connected VAE of Kingma & Welling (2014): images flattened, hidden layers of 500."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from litlab.core.layers import MLP
from litlab.core.number_types import PositiveInt
from litlab.generative.models.vae import VAE


class MLPEncoder(nn.Module):
    """Flattened image -> MLP -> posterior mean and log-variance.

    Args:
        image_shape: ``(C, H, W)`` of the images.
        hidden_features: Sizes of the hidden layers.
        latent_dim: Size of the latent code.
        activation: Activation class after each hidden layer.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt],
        hidden_features: Sequence[PositiveInt],
        latent_dim: PositiveInt,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.net = MLP(math.prod(image_shape), hidden_features, 2 * latent_dim, activation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.net(images.flatten(1)).chunk(2, dim=-1)
        return mean, log_var


class MLPDecoder(nn.Module):
    """Latent -> MLP -> one value per pixel, reshaped to the image.

    Args:
        image_shape: ``(C, H, W)`` of the images.
        hidden_features: Sizes of the hidden layers.
        latent_dim: Size of the latent code.
        activation: Activation class after each hidden layer.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt],
        hidden_features: Sequence[PositiveInt],
        latent_dim: PositiveInt,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = MLP(latent_dim, hidden_features, math.prod(image_shape), activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class MLPVAE(VAE):
    """An MLP encoder and its mirror decoder: 784-500-500-latent and back with the defaults.

    Kingma & Welling (2014) use 500 hidden units (tanh) for MNIST; ReLU trains faster here.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt] = (1, 28, 28),
        latent_dim: PositiveInt = 50,
        hidden_features: Sequence[PositiveInt] = (500, 500),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        """Args:
        image_shape: ``(C, H, W)`` of the images.
        latent_dim: Size of the latent code (2 draws a latent map).
        hidden_features: Hidden layer sizes of the encoder; the decoder uses them reversed.
        activation: Activation class after each hidden layer.
        """
        super().__init__(
            MLPEncoder(image_shape, hidden_features, latent_dim, activation),
            MLPDecoder(image_shape, tuple(reversed(hidden_features)), latent_dim, activation),
            latent_dim,
            image_shape,
        )
