"""Choosing the next token from a model's logits: temperature, top-k and top-p (nucleus).

Plain functions on (B, V) logits, usable with any autoregressive model.
"""

from __future__ import annotations

import torch


def check_sampling_options(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` naming the option that is out of range."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: always the most likely), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (or None: no top-k filter), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (or None: no top-p filter), got {top_p}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """``logits`` with everything below the k-th largest value of each row set to -inf.

    Tokens tied with the k-th value are kept, so a row may keep more than ``k``.
    """
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """``logits`` restricted to the nucleus: the most likely tokens whose probabilities first
    add up to at least ``p`` (Holtzman et al. 2020); the others become -inf.

    The most likely token always stays, whatever ``p``.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    # A token is dropped when the tokens before it already reach p.
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """``logits / temperature``, then the top-k and top-p filters (each when set).

    ``temperature`` must be > 0 here; 0 (greedy) is handled by :func:`sample_next_token`.
    """
    check_sampling_options(temperature, top_k, top_p)
    if temperature == 0:
        raise ValueError("filter_logits needs temperature > 0; greedy decoding takes the argmax")
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    return logits


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of the (B, V) ``logits``, as a (B, 1) tensor.

    ``temperature == 0`` is greedy decoding (the argmax, the limit of temperature -> 0); otherwise
    a draw from the softmax of :func:`filter_logits`, from ``generator`` when given.
    """
    check_sampling_options(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
