"""A variational autoencoder's networks: an encoder giving the Gaussian posterior q(z|x) and a
decoder giving the parameters of p(x|z) (Kingma & Welling, 2014)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt


class VAE(nn.Module):
    """An encoder and a decoder for images, with no loss: the likelihood lives in the task
    (litlab.generative.tasks.vae.VAETask).

    ``encoder(images)`` returns the posterior mean and log-variance, each (B, latent_dim);
    ``decoder(z)`` returns one value per pixel, (B, C, H, W): Bernoulli logits or Gaussian means.
    :class:`~litlab.generative.models.vae_mlp.MLPVAE` and
    :class:`~litlab.generative.models.vae_conv.ConvVAE` build both; any other pair with these
    signatures works too.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: PositiveInt,
        image_shape: Sequence[PositiveInt] = (1, 28, 28),
    ) -> None:
        """Args:
        encoder: Images (B, C, H, W) -> (mean, log_var), each (B, latent_dim).
        decoder: Latents (B, latent_dim) -> per-pixel parameters (B, C, H, W).
        latent_dim: Size of the latent code z.
        image_shape: ``(C, H, W)`` of the images.
        """
        super().__init__()
        if latent_dim < 1:
            raise LitlabError(f"latent_dim must be at least 1, got {latent_dim}")
        if len(image_shape) != 3:
            raise LitlabError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log-variance, each (B, latent_dim)."""
        mean, log_var = self.encoder(images)
        return mean, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The per-pixel parameters of p(x|z), (B, C, H, W)."""
        return self.decoder(z)
