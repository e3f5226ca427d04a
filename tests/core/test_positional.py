import math

import pytest
import torch

from litlab.core.layers import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)


def test_sinusoidal_matches_formula_interleaved():
    dim = 8
    enc = SinusoidalPositionalEncoding(dim, max_len=32)
    out = enc(torch.zeros(1, 20, dim))
    for pos in (0, 1, 7, 19):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            assert out[0, pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert out[0, pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_adds_to_input_and_checks_length():
    enc = SinusoidalPositionalEncoding(4, max_len=6)
    x = torch.randn(2, 6, 4)
    torch.testing.assert_close(enc(x) - x, enc(torch.zeros_like(x)))
    assert "pe" not in enc.state_dict()
    with pytest.raises(ValueError, match="max_len=6"):
        enc(torch.zeros(1, 7, 4))
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositionalEncoding(5)


def test_learned_embedding_adds_position_vectors():
    emb = LearnedPositionalEmbedding(max_len=8, dim=4)
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(emb(x), x + emb.embedding.weight[:5])
    torch.testing.assert_close(emb(x, offset=3), x + emb.embedding.weight[3:8])


def test_learned_embedding_raises_when_too_long():
    emb = LearnedPositionalEmbedding(max_len=8, dim=4)
    with pytest.raises(ValueError, match=r"max_len=8"):
        emb(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match=r"max_len=8"):
        emb(torch.zeros(1, 4, 4), offset=5)


def test_rotary_preserves_norm():
    rotary = RotaryEmbedding(8, max_len=16)
    x = torch.randn(2, 3, 16, 8)
    torch.testing.assert_close(rotary(x).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotary.rotate(x, offset=0), rotary(x))


def test_rotary_dot_product_depends_only_on_relative_position():
    torch.manual_seed(0)
    rotary = RotaryEmbedding(8, max_len=64)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m, n):
        return (rotary.rotate(q, offset=m) * rotary.rotate(k, offset=n)).sum().item()

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-5)
    assert score(0, 0) == pytest.approx(score(40, 40), abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)


def test_rotary_uses_half_split_pairs():
    rotary = RotaryEmbedding(4, base=10000.0, max_len=4)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)
    pos, inv_freq = 3, [1.0, 1.0 / 100.0]
    # Dimension i pairs with i + head_dim/2 (GPT-NeoX / Llama), rotated by pos * inv_freq[i].
    expected = torch.empty(4)
    for i, f in enumerate(inv_freq):
        c, s = math.cos(pos * f), math.sin(pos * f)
        a, b = x.flatten()[i].item(), x.flatten()[i + 2].item()
        expected[i], expected[i + 2] = a * c - b * s, a * s + b * c
    torch.testing.assert_close(rotary.rotate(x, offset=pos).flatten(), expected)


def test_rotary_rejects_odd_dims_and_long_sequences():
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)
    rotary = RotaryEmbedding(4, max_len=4)
    with pytest.raises(ValueError, match="max_len=4"):
        rotary(torch.zeros(1, 1, 3, 4), offset=2)
