"""Sinusoidal diffusion-timestep embedding."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Embed (B,) timesteps as ``[cos(t * f), sin(t * f)]`` like guided-diffusion.

    Frequencies are ``f_i = max_period^(-i / (dim // 2))``; an odd ``dim`` gets a zero column.
    """
    if timesteps.dim() != 1:
        raise ValueError(f"timesteps must have shape (B,), got {tuple(timesteps.shape)}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedding(nn.Module):
    """Sinusoidal timestep embedding, optionally followed by Linear-SiLU-Linear (DDPM).

    Args:
        dim: Size of the sinusoidal embedding.
        max_period: Longest wavelength of the sinusoids.
        hidden_dim: If given, project through ``Linear(dim, hidden_dim)``-SiLU-
            ``Linear(hidden_dim, hidden_dim)``; the output size is then ``hidden_dim``.
    """

    def __init__(
        self, dim: int, max_period: float = 10000.0, hidden_dim: int | None = None
    ) -> None:
        super().__init__()
        self.dim = dim
        self.max_period = max_period
        self.out_dim = hidden_dim or dim
        self.mlp = (
            nn.Sequential(nn.Linear(dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
            if hidden_dim
            else None
        )

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(timesteps, self.dim, self.max_period)
        return emb if self.mlp is None else self.mlp(emb)
