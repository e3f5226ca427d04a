"""A word-level tokenizer learnt from the training texts: one id per word, for models with a
word embedding table (RNNs, pretrained word vectors such as GloVe).

It is a ``tokenizers`` WordLevel model wrapped as a transformers ``PreTrainedTokenizerFast``,
so a DataModule uses it exactly like a subword tokenizer from the hub (``save_pretrained``,
``from_pretrained``, ``get_vocab``, ``pad_token_id``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN)  # ids 0 and 1
# Penn Treebank-style words, the ones GloVe has vectors for: "n't" and a leading apostrophe
# ("'s", "'re") start a word, hyphenated words stay whole, runs of other punctuation ("...",
# "--") stand alone. Text already tokenised that way (SST-2) keeps its tokens; raw text gets
# "doesn't" split into "does" and "n't", "it's" into "it" and "'s", "movie!" into "movie", "!".
WORD_PATTERN = r"\w+(?=n't\b)|n't\b|\w+(?:-\w+)*|'\w+|[^\w\s]+"
# Bump when the tokenizer's rules change, so cached tokenizers of the old rules are not reused.
FORMAT_VERSION = 1


def _empty_tokenizer(lowercase: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel({PAD_TOKEN: 0, UNK_TOKEN: 1}, unk_token=UNK_TOKEN))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(WORD_PATTERN), "isolated")]
    )
    return tokenizer


def train_word_tokenizer(
    texts: Iterable[str],
    vocab_size: int | None = 20000,
    min_frequency: int = 1,
    lowercase: bool = True,
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is the most frequent words of ``texts``.

    Ids: 0 ``[PAD]``, 1 ``[UNK]`` (every word left out), then words by decreasing count, ties
    in alphabetical order, so the same texts always give the same ids.

    Args:
        texts: The training texts.
        vocab_size: Size of the vocabulary, the two special tokens included (None: every word
            seen at least ``min_frequency`` times).
        min_frequency: Words seen fewer times are unknown.
        lowercase: Lowercase text before splitting it into words.
    """
    tokenizer = _empty_tokenizer(lowercase)
    counts: Counter[str] = Counter()
    for text in texts:
        if tokenizer.normalizer is not None:
            text = tokenizer.normalizer.normalize_str(text or "")
        counts.update(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text or ""))
    words = sorted(
        (word for word, count in counts.items() if count >= min_frequency),
        key=lambda word: (-counts[word], word),
    )
    if vocab_size is not None:
        words = words[: max(vocab_size - len(SPECIAL_TOKENS), 0)]
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *words))}
    tokenizer.model = models.WordLevel(vocab, unk_token=UNK_TOKEN)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_input_names=["input_ids", "attention_mask"],
    )


def cached_word_tokenizer(
    texts: list[str],
    cache_dir: str | os.PathLike[str],
    vocab_size: int | None = 20000,
    min_frequency: int = 1,
    lowercase: bool = True,
) -> PreTrainedTokenizerFast:
    """:func:`train_word_tokenizer`, saved under ``cache_dir`` and reused while the texts and
    settings are the same.

    The cache key is a hash of the texts themselves, not of a file name: test and predict runs
    of a trained model find the tokenizer it was trained with, and an edited training file gets
    a new one.
    """
    digest = hashlib.sha256(repr((FORMAT_VERSION, vocab_size, min_frequency, lowercase)).encode())
    for text in texts:
        digest.update((text or "").encode())
        digest.update(b"\0")
    folder = Path(cache_dir) / f"word-{digest.hexdigest()[:16]}"
    if (folder / "tokenizer.json").is_file():
        log.info("Using the cached word tokenizer %s", folder)
        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    tokenizer = train_word_tokenizer(texts, vocab_size, min_frequency, lowercase)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written next to its final place and renamed, so a process reading the cache (another
    # rank, another run) never sees half a tokenizer.
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    tokenizer.save_pretrained(str(staging))
    try:
        staging.rename(folder)
    except OSError:  # another process saved it first
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "Word tokenizer: %d words from %d training texts, saved to %s",
        len(tokenizer),
        len(texts),
        folder,
    )
    return tokenizer
