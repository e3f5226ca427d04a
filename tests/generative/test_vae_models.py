"""MLP and convolutional VAE networks: posterior parameters per latent unit, one decoder output
per pixel, and a clear error for image sizes the convolutions cannot halve."""

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.generative.models.vae import VAE
from litlab.generative.models.vae_conv import ConvVAE
from litlab.generative.models.vae_mlp import MLPVAE


@pytest.mark.parametrize(
    "model",
    [
        MLPVAE(latent_dim=2),
        MLPVAE(image_shape=(3, 8, 8), latent_dim=5, hidden_features=[32]),
        ConvVAE(latent_dim=2),
        ConvVAE(latent_dim=32, hidden_features=None),
        ConvVAE(image_shape=(3, 32, 32), latent_dim=16, channels=[8, 16, 32], hidden_features=64),
    ],
    ids=["mlp-2d", "mlp-rgb", "conv-2d", "conv-no-hidden", "conv-rgb-3-levels"],
)
def test_encoder_and_decoder_shapes(model: VAE):
    images = torch.rand(5, *model.image_shape)
    mean, log_var = model.encode(images)
    assert mean.shape == log_var.shape == (5, model.latent_dim)
    assert model.decode(torch.randn(7, model.latent_dim)).shape == (7, *model.image_shape)


def test_default_sizes_follow_the_literature():
    mlp = MLPVAE()
    linears = [m for m in mlp.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 500),
        (500, 500),
        (500, 2 * 50),  # mean and log-variance of a 50-d latent
    ]
    conv = ConvVAE()
    convs = [m for m in conv.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.stride) for m in convs] == [(32, (2, 2)), (64, (2, 2))]


def test_conv_vae_rejects_sizes_it_cannot_halve():
    with pytest.raises(LitlabError, match="divisible by 8"):
        ConvVAE(image_shape=(1, 28, 28), channels=[16, 32, 64])
