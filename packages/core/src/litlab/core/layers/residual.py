"""Residual blocks for token features and for feature maps."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block: ``x + Dropout(Linear(GELU(Linear(LayerNorm(x)))))``.

    Args:
        dim: Size of the last input dimension (kept by the block).
        hidden_dim: Width of the inner layer; defaults to ``dim``.
        dropout: Dropout probability on the residual branch.
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        hidden_dim = hidden_dim or dim
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(self.act(self.fc1(self.norm(x)))))


class ConvResidualBlock(nn.Module):
    """GroupNorm-SiLU-Conv3x3 twice with a shortcut, optionally conditioned on a timestep.

    This is the DDPM U-Net block (Ho et al., 2020): when ``time_dim`` is set, ``forward`` takes
    ``(x, t_emb)`` and adds ``Linear(SiLU(t_emb))`` per channel after the first convolution.

    Args:
        in_channels: Channels of the input feature map.
        out_channels: Channels of the output feature map.
        stride: Stride of the first convolution (2 halves the spatial size).
        time_dim: Size of the timestep embedding, or ``None`` for an unconditioned block.
        groups: Number of GroupNorm groups; must divide both channel counts.
        dropout: Dropout probability before the second convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        time_dim: int | None = None,
        groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"{name}={channels} is not divisible by groups={groups}")
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.time_proj = (
            nn.Sequential(nn.SiLU(), nn.Linear(time_dim, out_channels))
            if time_dim is not None
            else None
        )
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act = nn.SiLU()
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride)
            if in_channels != out_channels or stride != 1
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None = None) -> torch.Tensor:
        if (t_emb is None) != (self.time_proj is None):
            raise ValueError(
                "t_emb must be given if and only if the block was built with time_dim"
                f" (time_dim set: {self.time_proj is not None}, t_emb given: {t_emb is not None})"
            )
        h = self.conv1(self.act(self.norm1(x)))
        if self.time_proj is not None:
            h = h + self.time_proj(t_emb)[:, :, None, None]
        h = self.conv2(self.drop(self.act(self.norm2(h))))
        return h + self.shortcut(x)
