"""A tiny GPT-2 and a tiny BPE tokenizer for the causal-LM tests: no download, seconds to build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litlab.nlp.data.bpe_tokenizer import train_bpe_tokenizer
from litlab.nlp.models.hf_causal_lm import HFCausalLM

TINY_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\n"
) * 8
VOCAB_SIZE = 300


def tiny_gpt2_config(vocab_size: int = VOCAB_SIZE, **overrides: Any) -> dict[str, Any]:
    """Two layers, 32 wide, no dropout (so that runs compare exactly)."""
    config = {
        "model_type": "gpt2",
        "vocab_size": vocab_size,
        "n_positions": 128,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    return {**config, **overrides}


def tiny_tokenizer(cache_dir: Path):
    return train_bpe_tokenizer(TINY_TEXT.splitlines(keepends=True), VOCAB_SIZE, cache_dir)


def write_tiny_base(path: Path, cache_dir: Path) -> Path:
    """A randomly initialised tiny GPT-2 and its tokenizer, saved as a Hugging Face folder."""
    HFCausalLM(config=tiny_gpt2_config()).save_pretrained(path, tiny_tokenizer(cache_dir))
    return path
