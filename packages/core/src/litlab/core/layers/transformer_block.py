"""Pre-norm transformer encoder/decoder block."""

from __future__ import annotations

import torch
from torch import nn

from litlab.core.layers.attention import MultiHeadAttention
from litlab.core.layers.mlp import MLP
from litlab.core.layers.positional import RotaryEmbedding


class TransformerBlock(nn.Module):
    """Pre-norm block as in GPT-2 / nanoGPT: ``x + attn(LN(x))`` then ``x + mlp(LN(x))``.

    Args:
        embed_dim: Model width E.
        num_heads: Number of attention heads.
        mlp_ratio: Hidden width of the MLP relative to ``embed_dim``.
        dropout: Dropout on attention weights, inside the MLP and on both residual branches.
        causal: Mask future positions in self-attention.
        bias: Use biases in the linear and LayerNorm layers.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        causal: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, bias=bias)
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout, bias=bias, causal=causal)
        self.norm2 = nn.LayerNorm(embed_dim, bias=bias)
        hidden = int(embed_dim * mlp_ratio)
        self.mlp = MLP(embed_dim, [hidden], embed_dim, dropout=dropout, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        rotary: RotaryEmbedding | None = None,
    ) -> torch.Tensor:
        h = self.attn(self.norm1(x), key_padding_mask=key_padding_mask, rotary=rotary)
        x = x + self.drop(h)
        return x + self.drop(self.mlp(self.norm2(x)))
