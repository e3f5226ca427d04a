"""Next-token sampling: temperature, top-k and top-p against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from litlab.nlp.models.sampling import (
    check_sampling_options,
    filter_logits,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

INF = float("inf")


def kept(logits: torch.Tensor) -> list[list[int]]:
    return [torch.nonzero(torch.isfinite(row)).flatten().tolist() for row in logits]


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [5.0, -1.0, 0.5, 4.0]])
    filtered = top_k_filter(logits, 2)
    expected = torch.tensor([[-INF, 3.0, 2.0, -INF], [5.0, -INF, -INF, 4.0]])
    torch.testing.assert_close(filtered, expected)


def test_top_k_keeps_ties_with_the_kth_value_and_caps_k_at_the_vocabulary():
    logits = torch.tensor([[1.0, 2.0, 2.0, 0.0]])
    assert kept(top_k_filter(logits, 1)) == [[1, 2]]
    torch.testing.assert_close(top_k_filter(logits, 10), logits)


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    # Probabilities 0.15, 0.5, 0.05, 0.3: sorted 0.5 (id 1), 0.3 (id 3), 0.15 (id 0), 0.05 (id 2);
    # mass before each: 0, 0.5, 0.8, 0.95.
    logits = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).log()
    assert kept(top_p_filter(logits, 0.4)) == [[1]]
    assert kept(top_p_filter(logits, 0.7)) == [[1, 3]]
    assert kept(top_p_filter(logits, 0.85)) == [[0, 1, 3]]
    assert kept(top_p_filter(logits, 0.99)) == [[0, 1, 2, 3]]
    # Kept logits are unchanged (renormalising is the softmax's job).
    filtered = top_p_filter(logits, 0.7)
    torch.testing.assert_close(filtered[0, [1, 3]], logits[0, [1, 3]])


def test_top_p_keeps_the_most_likely_token_even_for_tiny_p_and_works_per_row():
    logits = torch.tensor([[0.6, 0.4], [0.1, 0.9]]).log()
    assert kept(top_p_filter(logits, 1e-6)) == [[0], [1]]


def test_filtered_probabilities_renormalise():
    logits = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).log()
    probs = filter_logits(logits, temperature=1.0, top_p=0.7).softmax(-1)
    torch.testing.assert_close(probs, torch.tensor([[0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8]]))


def test_temperature_divides_the_logits():
    logits = torch.tensor([[1.0, 2.0, 4.0]])
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)
    # Temperature is applied before top-p: at T=0.5, probabilities become 1:4:16 /21.
    probs = filter_logits(logits.log(), temperature=0.5, top_p=0.7).softmax(-1)
    torch.testing.assert_close(probs, torch.tensor([[0.0, 0.0, 1.0]]))


def test_temperature_to_zero_is_the_argmax():
    torch.manual_seed(0)
    logits = torch.randn(64, 50)
    argmax = logits.argmax(-1, keepdim=True)
    assert torch.equal(sample_next_token(logits, temperature=0), argmax)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        near_zero = sample_next_token(logits, temperature=1e-6, generator=generator)
        assert torch.equal(near_zero, argmax)


def test_top_k_one_is_the_argmax_at_any_temperature():
    logits = torch.randn(16, 30, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(0)
    sampled = sample_next_token(logits, temperature=5.0, top_k=1, generator=generator)
    assert torch.equal(sampled, logits.argmax(-1, keepdim=True))


def test_samples_only_come_from_the_filtered_set():
    logits = torch.tensor([[0.0, 3.0, 2.0, 1.0, 2.5]]).expand(2000, 5)
    generator = torch.Generator().manual_seed(0)
    tokens = sample_next_token(logits, top_k=2, generator=generator)
    assert set(tokens.flatten().tolist()) == {1, 4}
    # P(1) = e^3 / (e^3 + e^2.5) ~ 0.62
    expected = math.exp(3) / (math.exp(3) + math.exp(2.5))
    assert (tokens == 1).float().mean().item() == pytest.approx(expected, abs=0.04)


def test_the_same_generator_seed_gives_the_same_tokens():
    logits = torch.randn(8, 20, generator=torch.Generator().manual_seed(2))
    first = sample_next_token(logits, 0.9, 10, 0.9, torch.Generator().manual_seed(5))
    second = sample_next_token(logits, 0.9, 10, 0.9, torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    ("options", "name"),
    [((-0.1, None, None), "temperature"), ((1.0, 0, None), "top_k"), ((1.0, None, 0.0), "top_p")],
)
def test_out_of_range_options_name_the_option(options, name):
    with pytest.raises(ValueError, match=name):
        check_sampling_options(*options)
    with pytest.raises(ValueError, match=name):
        sample_next_token(torch.zeros(1, 3), *options)
