"""The cache key of tokenised datasets changes with what decides the token ids (vocabulary,
truncation) and with nothing else (the tokenizer having been used)."""

from litlab.nlp.data.tokenized_cache import tokenizer_cache_key
from litlab.nlp.data.word_tokenizer import train_word_tokenizer

TEXTS = ["the cat sat", "the dog ran far away"]


def test_another_truncation_gives_another_key():
    tokenizer = train_word_tokenizer(TEXTS, vocab_size=None)
    right = tokenizer_cache_key(tokenizer, {"max_length": 3, "side": "right"})
    assert right != tokenizer_cache_key(tokenizer, {"max_length": 3, "side": "left"})
    assert right != tokenizer_cache_key(tokenizer, {"max_length": 4, "side": "right"})
    assert right != tokenizer_cache_key(tokenizer, None)


def test_the_key_survives_truncating_and_knows_the_vocabulary():
    tokenizer = train_word_tokenizer(TEXTS, vocab_size=None)
    before = tokenizer_cache_key(tokenizer, None)
    # The backend keeps the truncation of this call; the key must not.
    tokenizer(TEXTS, truncation=True, max_length=2)
    assert tokenizer_cache_key(tokenizer, None) == before
    other = train_word_tokenizer([*TEXTS, "a bird"], vocab_size=None)
    assert tokenizer_cache_key(other, None) != before
