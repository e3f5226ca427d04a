import math

import pytest
import torch
from torch import nn

from litlab.core.layers import MultiHeadAttention, RotaryEmbedding

B, T, E, H = 2, 5, 16, 4


def naive_attention(mha, query, key, value, allowed=None, rotary=None):
    """softmax(QK^T / sqrt(d)) V with an optional bool (B, T, S) "may attend" mask."""

    def split(x):
        return x.view(x.size(0), x.size(1), H, E // H).transpose(1, 2)

    q, k, v = split(mha.q_proj(query)), split(mha.k_proj(key)), split(mha.v_proj(value))
    if rotary is not None:
        q, k = rotary.rotate(q), rotary.rotate(k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(E // H)
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(query.shape)
    return mha.out_proj(out)


def padding_mask():
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[1, -2:] = True
    return mask


@pytest.fixture
def mha():
    torch.manual_seed(0)
    return MultiHeadAttention(E, H).eval()


@pytest.fixture
def x():
    torch.manual_seed(1)
    return torch.randn(B, T, E)


def test_matches_naive_attention(mha, x):
    torch.testing.assert_close(mha(x), naive_attention(mha, x, x, x), atol=1e-5, rtol=1e-5)


def test_cross_attention_matches_naive(mha, x):
    memory = torch.randn(B, 7, E)
    torch.testing.assert_close(
        mha(x, memory), naive_attention(mha, x, memory, memory), atol=1e-5, rtol=1e-5
    )


def test_causal_matches_naive(mha, x):
    allowed = torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T)
    expected = naive_attention(mha, x, x, x, allowed)
    torch.testing.assert_close(mha(x, is_causal=True), expected, atol=1e-5, rtol=1e-5)
    causal = MultiHeadAttention(E, H, causal=True).eval()
    causal.load_state_dict(mha.state_dict())
    torch.testing.assert_close(causal(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_padding_matches_naive(mha, x, causal):
    mask = padding_mask()
    allowed = (~mask)[:, None, :].expand(B, T, T)
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()
    out = mha(x, key_padding_mask=mask, is_causal=causal)
    torch.testing.assert_close(out, naive_attention(mha, x, x, x, allowed), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_torch_multihead_attention(mha, x, causal, padded):
    ref = nn.MultiheadAttention(E, H, batch_first=True).eval()
    with torch.no_grad():
        for proj, w, b in zip(
            (mha.q_proj, mha.k_proj, mha.v_proj),
            ref.in_proj_weight.chunk(3),
            ref.in_proj_bias.chunk(3),
            strict=True,
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        mha.out_proj.load_state_dict(ref.out_proj.state_dict())
    mask = padding_mask() if padded else None
    attn_mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    expected, _ = ref(x, x, x, key_padding_mask=mask, attn_mask=attn_mask, need_weights=False)
    out = mha(x, key_padding_mask=mask, is_causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_causal_ignores_future_tokens(mha, x):
    changed = x.clone()
    changed[:, 3] += 1.0
    out, out_changed = mha(x, is_causal=True), mha(changed, is_causal=True)
    torch.testing.assert_close(out[:, :3], out_changed[:, :3])
    assert not torch.allclose(out[:, 3:], out_changed[:, 3:])


def test_padded_keys_are_ignored(mha, x):
    mask = padding_mask()
    changed = x.clone()
    changed[1, -1] += 5.0
    out = mha(x, x, x, key_padding_mask=mask)
    # Only key/value change; the padded position's own query row is not compared.
    out_changed = mha(x, changed, changed, key_padding_mask=mask)
    torch.testing.assert_close(out, out_changed)
    assert not torch.allclose(out, mha(x, changed, changed))


def test_rotary_matches_naive(mha, x):
    rotary = RotaryEmbedding(E // H, max_len=T)
    expected = naive_attention(mha, x, x, x, rotary=rotary)
    torch.testing.assert_close(mha(x, rotary=rotary), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mha(x, rotary=rotary), mha(x))


def test_attention_dropout_only_in_training(x):
    mha = MultiHeadAttention(E, H, dropout=0.5)
    mha.train()
    torch.manual_seed(0)
    assert not torch.allclose(mha(x), mha(x))
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x))


def test_shape_validation(mha, x):
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"\(B, S\)=\(2, 5\), got \(2, 4\)"):
        mha(x, key_padding_mask=torch.zeros(B, T - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        mha(x, key_padding_mask=torch.zeros(B, T))
    with pytest.raises(ValueError, match=r"query must have shape \(B, T, 16\)"):
        mha(torch.randn(B, T, E + 1))
    with pytest.raises(ValueError, match="head_dim"):
        mha(x, rotary=RotaryEmbedding(8))
