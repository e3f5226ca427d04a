"""Multi-head attention on top of ``F.scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from litlab.core.layers.positional import RotaryEmbedding


class MultiHeadAttention(nn.Module):
    """Batch-first multi-head attention with optional causal mask, padding mask and RoPE.

    Separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` layers (instead of a fused
    ``in_proj``) make weights easy to load from ``nn.MultiheadAttention`` (chunk its
    ``in_proj_weight`` in three) or from checkpoints that store them apart.

    Args:
        embed_dim: Model width E; must be divisible by ``num_heads``.
        num_heads: Number of attention heads.
        dropout: Dropout probability on the attention weights (training only).
        bias: Use biases in the projections.
        causal: Default for ``is_causal`` in ``forward``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.causal = causal
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        rotary: RotaryEmbedding | None = None,
        is_causal: bool | None = None,
    ) -> torch.Tensor:
        """Attend from ``query`` (B, T, E) to ``key``/``value`` (B, S, E).

        ``key`` defaults to ``query`` and ``value`` to ``key`` (self-attention).
        ``key_padding_mask`` is a bool (B, S) tensor, True marking padding to ignore (as in
        ``nn.MultiheadAttention``). ``is_causal`` overrides the constructor's ``causal``. A query
        row whose keys are all masked has no defined output and yields NaN, as in PyTorch.
        """
        key = query if key is None else key
        value = key if value is None else value
        is_causal = self.causal if is_causal is None else is_causal
        self._check_shapes(query, key, value, key_padding_mask)
        if rotary is not None and rotary.head_dim != self.head_dim:
            raise ValueError(
                f"rotary.head_dim={rotary.head_dim} does not match head_dim={self.head_dim}"
            )

        q, k, v = (
            self._split_heads(proj(x))
            for proj, x in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        if rotary is not None:
            q, k = rotary.rotate(q), rotary.rotate(k)

        attn_mask = None
        if key_padding_mask is not None:
            # SDPA's boolean masks mean "may attend", the opposite of key_padding_mask.
            attn_mask = ~key_padding_mask[:, None, None, :]
            if is_causal:
                # SDPA rejects is_causal together with attn_mask, so fold the causal part in.
                t, s = q.size(-2), k.size(-2)
                causal = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
                attn_mask = attn_mask & causal
                is_causal = False

        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )
        b, _, t, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.embed_dim))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def _check_shapes(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
    ) -> None:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.dim() != 3 or x.size(-1) != self.embed_dim:
                raise ValueError(
                    f"{name} must have shape (B, T, {self.embed_dim}), got {tuple(x.shape)}"
                )
        if key.shape[:2] != value.shape[:2] or key.size(0) != query.size(0):
            raise ValueError(
                "query, key and value must share the batch size and key/value the length, got "
                f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
            )
        if key_padding_mask is not None:
            expected = tuple(key.shape[:2])
            if tuple(key_padding_mask.shape) != expected:
                raise ValueError(
                    f"key_padding_mask must have shape (B, S)={expected}, "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            if key_padding_mask.dtype != torch.bool:
                raise ValueError(
                    f"key_padding_mask must be a bool tensor (True = padding), "
                    f"got {key_padding_mask.dtype}"
                )
