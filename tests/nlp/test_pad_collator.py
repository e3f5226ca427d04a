"""Text classification batches come from transformers' DataCollatorWithPadding now: the same
batches as litlab's hand-written collator gave, for the word-level and a hub tokenizer; the
causal LM collator stays, for the reason its last test shows."""

import copy
import random
from typing import Any

import pytest
import torch

from litlab.nlp.data.text_classification import PadCollator
from litlab.nlp.data.word_tokenizer import train_word_tokenizer
from litlab.nlp.pretrained import resolve_pretrained

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def hand_written_collator(pad_token_id: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """litlab's PadCollator before it was replaced, verbatim."""
    lengths = [len(row["input_ids"]) for row in rows]
    input_ids = torch.full((len(rows), max(max(lengths), 1)), pad_token_id)
    attention_mask = torch.zeros_like(input_ids)
    for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
        input_ids[i, :length] = torch.as_tensor(row["input_ids"])
        attention_mask[i, :length] = 1
    batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "labels" in rows[0]:
        batch["labels"] = torch.tensor([row["labels"] for row in rows])
    if "id" in rows[0]:
        batch["id"] = [row["id"] for row in rows]
    return batch


def assert_same_batch(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert set(new) == set(old)
    for key, value in old.items():
        if isinstance(value, torch.Tensor):
            assert new[key].dtype == value.dtype, key
            assert torch.equal(new[key], value), key
        else:
            assert new[key] == value, key


def batches(vocab_size: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(20):
        size = rng.randint(1, 6)
        rows = [
            {"input_ids": [rng.randrange(2, vocab_size) for _ in range(rng.randint(0, 9))]}
            for _ in range(size)
        ]
        kind = rng.choice(["labels", "int id", "name id"])
        for i, row in enumerate(rows):
            if kind == "labels":
                row["labels"] = rng.randrange(3)
            else:
                row["id"] = i if kind == "int id" else f"row-{i}"
        yield rows
    yield [{"input_ids": [], "labels": 1}, {"input_ids": [], "labels": 0}]  # every text empty
    yield [{"input_ids": [], "id": 0}]


@pytest.fixture(scope="module")
def word_tokenizer():
    return train_word_tokenizer(["a b c d e f", "b c d", "e f g h"])


@pytest.fixture(scope="module")
def hub_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_pretrained(MINILM))


@pytest.mark.parametrize("which", ["word_tokenizer", "hub_tokenizer"])
def test_batches_equal_the_hand_written_collators(which, request):
    tokenizer = request.getfixturevalue(which)
    collate = PadCollator(tokenizer)
    for rows in batches(len(tokenizer)):
        assert_same_batch(collate(rows), hand_written_collator(tokenizer.pad_token_id, rows))


def test_padding_stays_on_the_right_and_the_tokenizer_is_left_alone(hub_tokenizer):
    tokenizer = copy.deepcopy(hub_tokenizer)
    tokenizer.padding_side = "left"
    collate = PadCollator(tokenizer)
    assert tokenizer.padding_side == "left"
    for rows in batches(len(tokenizer), seed=1):
        assert_same_batch(collate(rows), hand_written_collator(tokenizer.pad_token_id, rows))


def test_causal_lm_collator_stays_because_end_of_text_padding_keeps_its_labels(word_tokenizer):
    from transformers import DataCollatorForLanguageModeling

    from litlab.nlp.data.causal_lm import IGNORE_INDEX, CausalLMCollator

    end_of_text = word_tokenizer.pad_token_id  # padding with the end-of-text token, as GPT-2's
    rows = [{"input_ids": [5, end_of_text]}, {"input_ids": [6, 7, 8, end_of_text, 9]}]
    batch = CausalLMCollator(end_of_text, max_length=4)(rows)
    ignored = IGNORE_INDEX
    assert batch["labels"].tolist() == [[5, end_of_text, ignored, ignored], [6, 7, 8, end_of_text]]
    library = DataCollatorForLanguageModeling(word_tokenizer, mlm=False)(rows)
    assert library["labels"][0, 1] == IGNORE_INDEX  # the text's own end would not be learnt
    assert library["input_ids"].shape[1] == 5  # nor the row cut to the block
