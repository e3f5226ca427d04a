"""A convolutional VAE: strided convolutions down to a small feature map, a fully connected
layer to the latent, and the mirror transposed convolutions back up."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt
from litlab.generative.models.vae import VAE


class ConvEncoder(nn.Module):
    """Conv(4x4, stride 2) + activation per entry of ``channels``, then a hidden linear layer
    and the posterior mean and log-variance.

    Args:
        image_shape: ``(C, H, W)`` of the images; H and W divisible by ``2 ** len(channels)``.
        channels: Output channels of the convolutions, each halving the resolution.
        hidden_features: Width of the linear layer between the feature map and the latent
            (None: the feature map connects to the latent directly).
        latent_dim: Size of the latent code.
        activation: Activation class after each layer.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt],
        channels: Sequence[PositiveInt],
        hidden_features: PositiveInt | None,
        latent_dim: PositiveInt,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        feature_shape = _feature_shape(image_shape, channels)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((image_shape[0], *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), activation()]
        layers.append(nn.Flatten())
        width = math.prod(feature_shape)
        if hidden_features is not None:
            layers += [nn.Linear(width, hidden_features), activation()]
            width = hidden_features
        layers.append(nn.Linear(width, 2 * latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.net(images).chunk(2, dim=-1)
        return mean, log_var


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: linear layers up to the smallest feature map, then
    ConvTranspose(4x4, stride 2) per entry of ``channels`` (reversed), each doubling the
    resolution; the last one outputs one value per pixel and channel.

    Args:
        image_shape: ``(C, H, W)`` of the images; H and W divisible by ``2 ** len(channels)``.
        channels: The encoder's convolution channels (not reversed).
        hidden_features: Width of the linear layer after the latent (None: the latent
            connects to the feature map directly).
        latent_dim: Size of the latent code.
        activation: Activation class after each layer but the last.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt],
        channels: Sequence[PositiveInt],
        hidden_features: PositiveInt | None,
        latent_dim: PositiveInt,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        feature_shape = _feature_shape(image_shape, channels)
        layers: list[nn.Module] = []
        width = latent_dim
        if hidden_features is not None:
            layers += [nn.Linear(latent_dim, hidden_features), activation()]
            width = hidden_features
        layers += [
            nn.Linear(width, math.prod(feature_shape)),
            activation(),
            nn.Unflatten(1, feature_shape),
        ]
        ups = list(reversed(channels))
        for i, (c_in, c_out) in enumerate(zip(ups, (*ups[1:], image_shape[0]), strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(ups) - 1:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvVAE(VAE):
    """A convolutional encoder and its mirror decoder.

    With the defaults on MNIST: 28x28 -> 32x14x14 -> 64x7x7 -> 512 -> latent, and back.
    """

    def __init__(
        self,
        image_shape: Sequence[PositiveInt] = (1, 28, 28),
        latent_dim: PositiveInt = 32,
        channels: Sequence[PositiveInt] = (32, 64),
        hidden_features: PositiveInt | None = 512,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        """Args:
        image_shape: ``(C, H, W)`` of the images; H and W divisible by ``2 ** len(channels)``.
        latent_dim: Size of the latent code (2 draws a latent map).
        channels: Channels of the strided convolutions, each halving the resolution; the
            decoder mirrors them.
        hidden_features: Width of the linear layer between the feature map and the latent
            (None: none, the feature map connects to the latent directly).
        activation: Activation class after each layer.
        """
        super().__init__(
            ConvEncoder(image_shape, channels, hidden_features, latent_dim, activation),
            ConvDecoder(image_shape, channels, hidden_features, latent_dim, activation),
            latent_dim,
            image_shape,
        )


def _feature_shape(image_shape: Sequence[int], channels: Sequence[int]) -> tuple[int, int, int]:
    """The (C, H, W) of the smallest feature map, after ``len(channels)`` halvings."""
    if not channels:
        raise LitlabError("channels must name at least one convolution, e.g. [32, 64]")
    _, height, width = image_shape
    factor = 2 ** len(channels)
    if height % factor or width % factor:
        raise LitlabError(
            f"{len(channels)} stride-2 convolutions need H and W divisible by {factor}, but "
            f"the images are {height}x{width}. Use fewer channels entries (e.g. 2 for 28x28)."
        )
    return channels[-1], height // factor, width // factor
