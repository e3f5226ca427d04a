"""Reusable torch building blocks (plain ``nn.Module``s, no Lightning)."""

from litlab.core.layers.attention import MultiHeadAttention
from litlab.core.layers.mlp import MLP
from litlab.core.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)
from litlab.core.layers.residual import ConvResidualBlock, ResidualBlock
from litlab.core.layers.timestep_embedding import TimestepEmbedding, timestep_embedding
from litlab.core.layers.transformer_block import TransformerBlock

__all__ = [
    "MLP",
    "ConvResidualBlock",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "ResidualBlock",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "TimestepEmbedding",
    "TransformerBlock",
    "timestep_embedding",
]
