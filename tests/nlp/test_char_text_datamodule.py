"""CharTextDataModule on the real Tiny Shakespeare file, and its errors on small files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.nlp.data.char_text import (
    IGNORE_INDEX,
    CharTextDataModule,
    CharVocabulary,
    ConsecutiveBlocks,
)

SHAKESPEARE_CHARS = 1_115_394


@pytest.fixture
def shakespeare(data_root) -> CharTextDataModule:
    datamodule = CharTextDataModule(
        data_dir=str(data_root), block_size=64, batch_size=12, samples_per_epoch=60, shuffle_seed=7
    )
    datamodule.setup("fit")
    return datamodule


def small_text(tmp_path: Path, text: str = "hello world, hello there.\n" * 20) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_vocabulary_is_the_sorted_characters(shakespeare, data_root):
    text = (data_root / "tinyshakespeare" / "input.txt").read_text()
    assert shakespeare.vocab_size == 65
    assert shakespeare.vocabulary.chars == "".join(sorted(set(text)))
    assert shakespeare.vocabulary.chars[:2] == "\n "
    assert shakespeare.decode(shakespeare.encode(text[:1000])) == text[:1000]


def test_split_is_90_10_and_contiguous(shakespeare):
    train, val = shakespeare.train_tokens, shakespeare.val_tokens
    assert len(train) == int(SHAKESPEARE_CHARS * 0.9) == 1_003_854
    assert len(val) == SHAKESPEARE_CHARS - 1_003_854 == 111_540
    assert shakespeare.decode(val[:14]) == "?\n\nGREMIO:\nGoo"  # nanoGPT's val split starts here


def test_training_blocks_and_targets_shifted_by_one(shakespeare):
    loader = shakespeare.train_dataloader()
    batches = list(loader)
    assert len(batches) == 60 // 12
    tokens = shakespeare.train_tokens
    offsets = list(loader.sampler)
    for batch_index, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (12, 64)
        assert x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row in range(12):
            offset = offsets[batch_index * 12 + row]
            assert torch.equal(x[row], tokens[offset : offset + 64])
            assert torch.equal(y[row], tokens[offset + 1 : offset + 65])


def test_a_fresh_seeded_draw_every_epoch(shakespeare):
    sampler = shakespeare.train_dataloader().sampler
    epoch0 = list(sampler)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    assert max(epoch0 + epoch1) <= len(shakespeare.train_tokens) - 65
    other_seed = CharTextDataModule(
        data_dir=shakespeare.data_root, samples_per_epoch=60, shuffle_seed=8
    ).train_dataloader()
    assert list(other_seed.sampler) != epoch0


def test_validation_predicts_every_val_character_once(shakespeare):
    loader = shakespeare.val_dataloader()
    inputs, targets = (torch.cat(parts) for parts in zip(*loader, strict=True))
    assert inputs.shape[1] == 64
    assert len(inputs) == -(-(111_540 - 1) // 64)
    scored = targets != IGNORE_INDEX
    val = shakespeare.val_tokens
    assert torch.equal(targets[scored], val[1:])
    assert torch.equal(inputs[scored], val[:-1])


def test_consecutive_blocks_pad_only_the_last_block():
    blocks = ConsecutiveBlocks(torch.arange(10), block_size=4)
    assert len(blocks) == 3
    assert [b[0].tolist() for b in blocks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 0, 0, 0]]
    assert [b[1].tolist() for b in blocks] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, -1, -1, -1]]


def test_predict_yields_the_encoded_prompts(tmp_path):
    datamodule = CharTextDataModule(text_file=str(small_text(tmp_path)), prompts=["\n", "hello"])
    datamodule.setup("predict")
    prompts = list(datamodule.predict_dataloader())
    assert [p.shape for p in prompts] == [(1, 1), (1, 5)]
    assert [datamodule.decode(p[0]) for p in prompts] == ["\n", "hello"]
    assert CharTextDataModule(text_file=str(small_text(tmp_path))).prompts == ["\n"]


def test_prompt_with_unknown_characters_is_refused(tmp_path):
    datamodule = CharTextDataModule(text_file=str(small_text(tmp_path)), prompts=["Hello!"])
    with pytest.raises(LitlabError, match="do not occur in") as info:
        datamodule.setup("predict")
    assert "'H!'" in str(info.value)
    assert "--data.prompts" in str(info.value)


def test_empty_prompt_is_refused(tmp_path):
    datamodule = CharTextDataModule(text_file=str(small_text(tmp_path)), prompts=[""])
    with pytest.raises(LitlabError, match="empty prompt"):
        datamodule.setup("predict")


def test_missing_file_names_the_path_and_the_variable(tmp_path):
    datamodule = CharTextDataModule(data_dir=str(tmp_path))
    with pytest.raises(LitlabError) as info:
        datamodule.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in message
    assert "LITLAB_DATA" in message


def test_relative_text_file_is_found_in_the_data_root(tmp_path, monkeypatch):
    small_text(tmp_path)
    monkeypatch.setenv("LITLAB_DATA", str(tmp_path))
    assert CharTextDataModule(text_file="small.txt").vocab_size == len(set("hello world,there.\n"))


def test_too_short_text_and_bad_options(tmp_path):
    with pytest.raises(LitlabError, match="too short"):
        CharTextDataModule(text_file=str(small_text(tmp_path, "abc" * 10)), block_size=64).setup(
            "fit"
        )
    with pytest.raises(LitlabError, match="samples_per_epoch must be >= 12"):
        CharTextDataModule(samples_per_epoch=5)
    with pytest.raises(LitlabError, match="val_fraction"):
        CharTextDataModule(val_fraction=1.0)


def test_vocabulary_encode_rejects_unknown_characters():
    vocabulary = CharVocabulary.from_text("banana")
    assert vocabulary.chars == "abn"
    assert vocabulary.encode("nab").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="'x'"):
        vocabulary.encode("bax")
