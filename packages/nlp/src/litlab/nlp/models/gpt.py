"""A decoder-only transformer language model (GPT-2, Radford et al. 2019), as in nanoGPT."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from litlab.core.layers import LearnedPositionalEmbedding, RotaryEmbedding, TransformerBlock
from litlab.core.number_types import PositiveInt, RightOpenUnitInterval
from litlab.nlp.models.sampling import check_sampling_options, sample_next_token

INIT_STD = 0.02


class GPT(nn.Module):
    """Token embedding, pre-norm causal transformer blocks, final LayerNorm, linear head.

    Attention runs on ``F.scaled_dot_product_attention`` with its causal mask. Initialisation is
    nanoGPT's: every linear and embedding weight ~ N(0, 0.02), biases zero, and the two output
    projections that feed each block's residual stream (attention out, MLP out) ~
    N(0, 0.02 / sqrt(2 * num_layers)), so the residual stream's variance does not grow with
    depth. One difference from nanoGPT with ``dropout > 0``: litlab's block also drops after the
    MLP's activation.
    """

    def __init__(
        self,
        vocab_size: PositiveInt,
        block_size: PositiveInt = 256,
        num_layers: PositiveInt = 6,
        num_heads: PositiveInt = 6,
        embed_dim: PositiveInt = 384,
        dropout: RightOpenUnitInterval = 0.0,
        bias: bool = False,
        positions: Literal["learned", "rotary"] = "learned",
        tie_weights: bool = True,
    ) -> None:
        """Args:
        vocab_size: Number of token ids (logits per position).
        block_size: Longest context the model sees; generation keeps the last ``block_size``.
        num_layers: Number of transformer blocks.
        num_heads: Attention heads per block; must divide ``embed_dim``.
        embed_dim: Model width.
        dropout: Dropout on the embeddings, attention weights, MLP and residual branches.
        bias: Biases in the linear and LayerNorm layers (nanoGPT: off, a little better and
            faster).
        positions: ``"learned"`` absolute position embeddings (GPT-2) or ``"rotary"`` ones
            applied to queries and keys (RoFormer).
        tie_weights: Share one matrix between the token embedding and the output head
            (Press & Wolf 2017).
        """
        super().__init__()
        if positions not in ("learned", "rotary"):
            raise ValueError(f"positions must be 'learned' or 'rotary', got {positions!r}")
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.positions = positions
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.position_embedding = (
            LearnedPositionalEmbedding(block_size, embed_dim) if positions == "learned" else None
        )
        self.rotary = (
            RotaryEmbedding(embed_dim // num_heads, max_len=block_size)
            if positions == "rotary"
            else None
        )
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, num_heads, dropout=dropout, causal=True, bias=bias)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(embed_dim, bias=bias)
        self.lm_head = nn.Linear(embed_dim, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.token_embedding.weight
        self.apply(_init_weights)
        residual_std = INIT_STD / math.sqrt(2 * num_layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.out_proj.weight, std=residual_std)
            nn.init.normal_(block.mlp[-1].weight, std=residual_std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab_size) for token ids ``idx`` (B, T); position t sees tokens <= t."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        if idx.size(1) > self.block_size:
            raise ValueError(
                f"sequence of {idx.size(1)} tokens is longer than block_size={self.block_size}"
            )
        x = self.token_embedding(idx)
        if self.position_embedding is not None:
            x = self.position_embedding(x)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rotary=self.rotary)
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``idx`` (B, T) followed by ``max_new_tokens`` sampled tokens, (B, T + max_new_tokens).

        Each step sees the last ``block_size`` tokens. Sampling: see
        :func:`litlab.nlp.models.sampling.sample_next_token` (``temperature=0``: greedy). Call it
        in eval mode, or dropout stays on.
        """
        check_sampling_options(temperature, top_k, top_p)
        if idx.dim() != 2 or idx.size(1) == 0:
            raise ValueError(f"idx must have shape (B, T) with T >= 1, got {tuple(idx.shape)}")
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size :])[:, -1, :]
            next_token = sample_next_token(logits, temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_token], dim=1)
        return idx


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
