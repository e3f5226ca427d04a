"""GPT: size, causality, weight tying, initialisation and generation."""

from __future__ import annotations

import math

import pytest
import torch

from litlab.nlp.models.gpt import GPT

TINY = {"vocab_size": 11, "block_size": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(**{**TINY, **overrides}).eval()


def test_nanogpt_baby_size():
    model = GPT(vocab_size=65, block_size=64, num_layers=4, num_heads=4, embed_dim=128)
    # nanoGPT prints 0.80M: its count leaves out the 64 x 128 position embeddings.
    unique = sum(p.numel() for p in model.parameters())
    assert unique == 804_096
    assert unique - 64 * 128 == 795_904
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_output_shape(positions):
    model = tiny_gpt(positions=positions)
    assert model(torch.randint(11, (3, 16))).shape == (3, 16, 11)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_a_later_token_never_changes_earlier_logits(positions):
    model = tiny_gpt(positions=positions)
    idx = torch.randint(11, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = idx.clone()
    changed[:, 7] = (idx[:, 7] + 1) % 11
    logits, logits_changed = model(idx), model(changed)
    torch.testing.assert_close(logits_changed[:, :7], logits[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(logits_changed[:, 7:], logits[:, 7:])


def test_rotary_has_no_position_embedding_and_positions_matter():
    model = tiny_gpt(positions="rotary")
    assert model.position_embedding is None
    assert model.rotary is not None
    # The same token twice gets different outputs at different positions (RoPE reached them).
    logits = model(torch.tensor([[3, 5, 3, 5]]))
    assert not torch.allclose(logits[0, 1], logits[0, 3])


def test_tied_weights_are_one_tensor():
    model = tiny_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    assert sum(p is model.lm_head.weight for p in model.parameters()) == 1
    # Writing through the head changes the embedding: one storage.
    with torch.no_grad():
        model.lm_head.weight[0, 0] = 42.0
    assert model.token_embedding.weight[0, 0] == 42.0
    # Still shared after a round trip through a state dict.
    restored = tiny_gpt()
    restored.load_state_dict(model.state_dict())
    assert restored.lm_head.weight is restored.token_embedding.weight
    assert restored.token_embedding.weight[0, 0] == 42.0


def test_untied_weights_are_separate():
    model = tiny_gpt(tie_weights=False)
    assert model.lm_head.weight is not model.token_embedding.weight
    tied = sum(p.numel() for p in tiny_gpt().parameters())
    assert sum(p.numel() for p in model.parameters()) == tied + 11 * 16


def test_nanogpt_initialisation():
    torch.manual_seed(0)
    model = GPT(vocab_size=65, block_size=64, num_layers=4, num_heads=4, embed_dim=256)
    residual = 0.02 / math.sqrt(2 * 4)
    for block in model.blocks:
        assert block.attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.mlp[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.out_proj.weight.std().item() == pytest.approx(residual, rel=0.05)
        assert block.mlp[-1].weight.std().item() == pytest.approx(residual, rel=0.05)
        assert torch.equal(block.norm1.weight, torch.ones(256))
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    position_std = model.position_embedding.embedding.weight.std().item()
    assert position_std == pytest.approx(0.02, rel=0.05)
    biased = GPT(vocab_size=65, block_size=8, num_layers=1, num_heads=2, embed_dim=8, bias=True)
    assert torch.equal(biased.blocks[0].attn.q_proj.bias, torch.zeros(8))


def test_too_long_input_raises():
    with pytest.raises(ValueError, match="block_size=16"):
        tiny_gpt()(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_generation_is_deterministic_for_a_seed(positions):
    model = tiny_gpt(positions=positions)
    prompt = torch.tensor([[1, 2, 3]])

    def sample(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return model.generate(prompt, 20, temperature=0.9, top_k=5, generator=generator)

    out = sample(0)
    assert out.shape == (1, 23)
    assert torch.equal(out[:, :3], prompt)
    assert torch.equal(sample(0), out)
    assert not torch.equal(sample(1), out)


def test_greedy_generation_crops_the_context_to_block_size():
    model = tiny_gpt(block_size=8)
    prompt = torch.randint(11, (2, 12), generator=torch.Generator().manual_seed(3))
    out = model.generate(prompt, 6, temperature=0)
    assert out.shape == (2, 18)
    # Step by step by hand: the argmax of the last logits of the last 8 tokens.
    expected = prompt
    for _ in range(6):
        next_token = model(expected[:, -8:])[:, -1].argmax(-1, keepdim=True)
        expected = torch.cat([expected, next_token], dim=1)
    assert torch.equal(out, expected)
    # Only the last block_size tokens matter.
    assert torch.equal(model.generate(prompt[:, -8:], 6, temperature=0)[:, 8:], out[:, 12:])


def test_generation_rejects_bad_options():
    with pytest.raises(ValueError, match="top_p"):
        tiny_gpt().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_p=1.5)
    with pytest.raises(ValueError, match="T >= 1"):
        tiny_gpt().generate(torch.zeros(1, 0, dtype=torch.long), 2)
