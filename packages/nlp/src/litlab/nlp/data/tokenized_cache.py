"""The cache key of tokenised datasets: what decides the token ids, and nothing else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from transformers import PreTrainedTokenizerBase


def tokenizer_cache_key(
    tokenizer: PreTrainedTokenizerBase, truncation: Mapping[str, Any] | None
) -> str:
    """A hash of the tokenizer's vocabulary and rules, and of the truncation the encoding
    applies (e.g. ``{"max_length": 128, "side": "right"}``; None: texts are not truncated).

    Not a hash of the tokenizer object, nor of its backend's truncation and padding: the
    backend keeps those of its latest call, so they change once a text has been truncated and
    would miss the cache. The truncation of this encoding is hashed from ``truncation``
    instead, so a changed length or side never reuses tokens cut otherwise.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        rules: Any = sorted(tokenizer.get_vocab().items())
    else:
        rules = json.loads(backend.to_str())
        rules.pop("truncation", None)
        rules.pop("padding", None)
    content = json.dumps({"rules": rules, "truncation": truncation}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()
