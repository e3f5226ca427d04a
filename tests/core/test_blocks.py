import math

import pytest
import torch
from torch import nn

from litlab.core.layers import (
    MLP,
    ConvResidualBlock,
    ResidualBlock,
    RotaryEmbedding,
    TimestepEmbedding,
    TransformerBlock,
)


def test_mlp_shapes_and_structure():
    mlp = MLP(6, [12, 10], 3, activation=nn.ReLU, dropout=0.1, norm=True)
    assert mlp(torch.randn(4, 7, 6)).shape == (4, 7, 3)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 12), (12, 10), (10, 3)]
    assert sum(isinstance(m, nn.LayerNorm) for m in mlp) == 2
    assert isinstance(mlp[-1], nn.Linear)
    assert MLP(6, [], 3)(torch.randn(2, 6)).shape == (2, 3)


def test_mlp_dropout_inactive_in_eval():
    mlp = MLP(8, [32], 8, dropout=0.5)
    x = torch.randn(16, 8)
    mlp.train()
    assert not torch.allclose(mlp(x), mlp(x))
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x))


def test_residual_block_is_residual():
    block = ResidualBlock(8, hidden_dim=16)
    x = torch.randn(2, 5, 8)
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.fc2.weight.zero_()
        block.fc2.bias.zero_()
    torch.testing.assert_close(block(x), x)


def test_transformer_block_shape_and_causality():
    torch.manual_seed(0)
    block = TransformerBlock(16, 4, causal=True).eval()
    x = torch.randn(2, 6, 16)
    out = block(x)
    assert out.shape == x.shape
    changed = x.clone()
    changed[:, 4] += 1.0
    out_changed = block(changed)
    torch.testing.assert_close(out[:, :4], out_changed[:, :4])
    assert not torch.allclose(out[:, 4:], out_changed[:, 4:])
    no_padding = torch.zeros(2, 6, dtype=torch.bool)
    out = block(x, key_padding_mask=no_padding, rotary=RotaryEmbedding(4, max_len=6))
    assert out.shape == x.shape


def test_transformer_block_gradient_reaches_all_parameters():
    block = TransformerBlock(16, 4, mlp_ratio=2.0, dropout=0.1)
    block(torch.randn(2, 6, 16)).pow(2).mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_conv_residual_block_with_time_embedding():
    torch.manual_seed(0)
    block = ConvResidualBlock(8, 16, stride=2, time_dim=12, groups=4).eval()
    x = torch.randn(2, 8, 10, 10)
    t1, t2 = torch.randn(2, 12), torch.randn(2, 12)
    out = block(x, t1)
    assert out.shape == (2, 16, 5, 5)
    assert not torch.allclose(out, block(x, t2))
    with pytest.raises(ValueError, match="time_dim"):
        block(x)


def test_conv_residual_block_identity_shortcut_and_validation():
    block = ConvResidualBlock(8, 8, groups=4)
    assert isinstance(block.shortcut, nn.Identity)
    assert block(torch.randn(1, 8, 6, 6)).shape == (1, 8, 6, 6)
    with pytest.raises(ValueError, match="time_dim"):
        block(torch.randn(1, 8, 6, 6), torch.randn(1, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        ConvResidualBlock(6, 8, groups=4)


def guided_diffusion_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    rows = []
    for ti in t:
        freqs = [math.exp(-math.log(max_period) * i / half) for i in range(half)]
        rows.append([math.cos(ti * f) for f in freqs] + [math.sin(ti * f) for f in freqs])
    return torch.tensor(rows)


def test_timestep_embedding_matches_guided_diffusion():
    t = torch.tensor([0, 1, 10, 999])
    emb = TimestepEmbedding(8)(t)
    assert emb.shape == (4, 8)
    torch.testing.assert_close(emb, guided_diffusion_embedding(t.tolist(), 8), atol=1e-5, rtol=0)
    float_t = torch.tensor([0.5, 250.25])
    torch.testing.assert_close(
        TimestepEmbedding(6)(float_t), guided_diffusion_embedding(float_t.tolist(), 6)
    )
    odd = TimestepEmbedding(7)(t)
    assert odd.shape == (4, 7)
    assert torch.all(odd[:, -1] == 0)


def test_timestep_embedding_distinguishes_timesteps_and_projects():
    emb = TimestepEmbedding(16)(torch.arange(50))
    assert torch.cdist(emb, emb).add(torch.eye(50)).min() > 1e-3
    projected = TimestepEmbedding(16, hidden_dim=32)
    assert projected.out_dim == 32
    assert projected(torch.tensor([3, 7])).shape == (2, 32)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        projected(torch.tensor(3))
