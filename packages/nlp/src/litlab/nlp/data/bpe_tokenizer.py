"""A byte-level BPE tokenizer trained on a corpus, for models pre-trained from scratch here.

No GPT-2 tokenizer can be downloaded offline, and a model built from a config has no
tokenizer of its own; this one is trained the way GPT-2's was (byte-level BPE: every byte
string is encodable, decoding is lossless) on the training text, cached by its content, and
returned as a Hugging Face fast tokenizer that ``save_pretrained`` stores beside the model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

END_OF_TEXT = "<|endoftext|>"
# Bumped when the training recipe changes, so old cache files are not reused.
RECIPE_VERSION = "1"
MIN_VOCAB_SIZE = 256 + 1  # every byte, plus the end-of-text token


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    cache_dir: str | os.PathLike[str],
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of ``vocab_size`` tokens trained on ``texts``.

    ``<|endoftext|>`` (id 0) is the one special token, serving as BOS, EOS, padding and
    unknown, as in GPT-2. The trained tokenizer is cached in ``cache_dir`` under a hash of the
    texts and the settings, so the same corpus is trained on once.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise LitlabError(
            f"bpe vocab_size {vocab_size} is too small: a byte-level BPE needs at least "
            f"{MIN_VOCAB_SIZE} (256 bytes and <|endoftext|>). Raise it (a few thousand is usual)."
        )
    texts = list(texts)
    digest = hashlib.sha256(f"{RECIPE_VERSION}|{vocab_size}|{min_frequency}|".encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    path = Path(cache_dir) / f"bpe-{vocab_size}-{digest.hexdigest()[:16]}.json"
    if path.is_file():
        log.info("Using the cached BPE tokenizer %s", path)
        tokenizer = Tokenizer.from_file(str(path))
    else:
        log.info(
            "Training a byte-level BPE tokenizer (%d tokens) on %d texts", vocab_size, len(texts)
        )
        tokenizer = _train(texts, vocab_size, min_frequency)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        tokenizer.save(str(partial))
        partial.replace(path)
    return as_transformers_tokenizer(tokenizer)


def as_transformers_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """``tokenizer`` wrapped for transformers, with GPT-2's special-token conventions."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
    )


def _train(texts: list[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    # No prefix space: the training text keeps its own spaces and line breaks, so decoding
    # gives back exactly the text that was encoded.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer
