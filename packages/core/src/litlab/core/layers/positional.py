"""Position information: fixed sinusoidal, learned absolute, and rotary embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn


def _check_length(length: int, max_len: int, offset: int = 0) -> None:
    if offset < 0 or offset + length > max_len:
        raise ValueError(
            f"positions {offset}..{offset + length - 1} do not fit max_len={max_len}; "
            "build the module with a larger max_len"
        )


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal encoding (Vaswani et al., 2017) added to a (B, T, D) input.

    Interleaved layout: ``PE[pos, 2i] = sin(pos / 10000^(2i/D))``, ``PE[pos, 2i+1] = cos(...)``.

    Args:
        dim: Feature size D; must be even.
        max_len: Longest sequence supported.
    """

    pe: torch.Tensor  # a buffer

    def __init__(self, dim: int, max_len: int = 4096) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        self.max_len = max_len
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        # Not persistent: it is a pure function of (dim, max_len), so checkpoints stay portable.
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x.size(1), self.max_len)
        return x + self.pe[: x.size(1)].to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Trainable absolute position embedding (GPT-2 / BERT) added to a (B, T, D) input.

    Args:
        max_len: Number of positions with an embedding.
        dim: Feature size D.
    """

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, dim)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_length(x.size(1), self.max_len, offset)
        positions = torch.arange(offset, offset + x.size(1), device=x.device)
        return x + self.embedding(positions).to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al., RoFormer) for (B, H, T, Dh) queries and keys.

    Uses the half-split ``rotate_half`` convention of GPT-NeoX / HF Llama: dimension ``i`` is
    paired with ``i + Dh/2`` rather than with its neighbour.

    Args:
        head_dim: Per-head feature size Dh; must be even.
        base: Frequency base; larger values give longer wavelengths.
        max_len: Longest position (offset + length) supported.
    """

    cos: torch.Tensor  # a buffer
    sin: torch.Tensor  # a buffer

    def __init__(self, head_dim: int, base: float = 10000.0, max_len: int = 4096) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"head_dim must be even, got {head_dim}")
        self.head_dim = head_dim
        self.max_len = max_len
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        freqs = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", freqs.cos(), persistent=False)
        self.register_buffer("sin", freqs.sin(), persistent=False)

    def rotate(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x`` (..., T, Dh) as if its first token sat at position ``offset``."""
        if x.size(-1) != self.head_dim:
            raise ValueError(f"expected last dim {self.head_dim}, got shape {tuple(x.shape)}")
        length = x.size(-2)
        _check_length(length, self.max_len, offset)
        cos = self.cos[offset : offset + length].to(x.dtype)
        sin = self.sin[offset : offset + length].to(x.dtype)
        return x * cos + rotate_half(x) * sin

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.rotate(x, offset)
