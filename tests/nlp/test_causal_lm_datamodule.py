"""CausalLMDataModule: reading files, packing into blocks, padding, prompts and caching."""

from __future__ import annotations

import os

import datasets
import pytest
import torch
from tiny_causal_lm import TINY_TEXT, VOCAB_SIZE, tiny_tokenizer

from litlab.core.errors import LitlabError
from litlab.nlp.data.bpe_tokenizer import train_bpe_tokenizer
from litlab.nlp.data.causal_lm import IGNORE_INDEX, CausalLMDataModule


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer(path / "cache").save_pretrained(path)
    return path


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TINY_TEXT)
    return path


def make_datamodule(tmp_path, train_files, tokenizer_dir, **options):
    options = {"block_size": 16, "batch_size": 4, "cache_dir": str(tmp_path / "cache"), **options}
    datamodule = CausalLMDataModule(
        train_files=str(train_files), tokenizer=str(tokenizer_dir), **options
    )
    datamodule.setup("fit")
    return datamodule


def all_blocks(dataset) -> list[list[int]]:
    return [row["input_ids"] for row in dataset]


def test_packing_cuts_the_token_stream_into_full_blocks(tmp_path, text_file, tokenizer_dir):
    datamodule = make_datamodule(tmp_path, text_file, tokenizer_dir, val_fraction=0.25)
    tokenizer = datamodule.tokenizer
    lines = TINY_TEXT.splitlines(keepends=True)
    held_out = round(len(lines) * 0.25)
    for dataset, rows in (
        (datamodule.train_dataset, lines[:-held_out]),
        (datamodule.val_dataset, lines[-held_out:]),
    ):
        stream = [i for line in rows for i in tokenizer(line, add_special_tokens=False).input_ids]
        blocks = all_blocks(dataset)
        assert all(len(block) == 16 for block in blocks)
        packed = [i for block in blocks for i in block]
        # In order, nothing duplicated, nothing lost but the final partial block.
        assert packed == stream[: len(packed)]
        assert 0 <= len(stream) - len(packed) < 16
    # Byte-level BPE and kept line breaks: the blocks decode back to the text itself.
    assert tokenizer.decode([i for b in all_blocks(datamodule.train_dataset) for i in b]) in (
        TINY_TEXT
    )


def test_batches_hold_labels_equal_to_inputs_and_a_full_mask(tmp_path, text_file, tokenizer_dir):
    datamodule = make_datamodule(tmp_path, text_file, tokenizer_dir)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input_ids"].shape == (4, 16)
    assert torch.equal(batch["labels"], batch["input_ids"])
    assert bool(batch["attention_mask"].all())


def test_unpacked_rows_are_padded_on_the_right_and_masked(tmp_path, tokenizer_dir):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "Speak, speak."}\n{"text": "All resolved rather to die."}\n')
    datamodule = make_datamodule(
        tmp_path, path, tokenizer_dir, pack=False, val_files=str(path), block_size=6
    )
    batch = next(iter(datamodule.val_dataloader()))
    tokenizer = datamodule.tokenizer
    lengths = [
        min(len(tokenizer(t).input_ids), 6)
        for t in ("Speak, speak.", "All resolved rather to die.")
    ]
    assert batch["input_ids"].shape == (2, max(lengths))
    for row, length in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)
        assert (batch["labels"][row, length:] == IGNORE_INDEX).all()
        assert torch.equal(batch["labels"][row, :length], batch["input_ids"][row, :length])
        assert (batch["input_ids"][row, length:] == tokenizer.pad_token_id).all()


def test_tsv_sentences_keep_their_quotes_and_get_an_end_of_text(tmp_path, tokenizer_dir):
    path = tmp_path / "train.tsv"
    sentences = ['a "quoted" line ', "it 's \" odd", "plain"]
    path.write_text("sentence\tlabel\n" + "".join(f"{s}\t1\n" for s in sentences))
    datamodule = make_datamodule(
        tmp_path, path, tokenizer_dir, text_column="sentence", val_files=str(path),
        append_eos=True, block_size=2,
    )  # fmt: skip
    tokenizer = datamodule.tokenizer
    packed = [i for block in all_blocks(datamodule.val_dataset) for i in block]
    expected = [i for s in sentences for i in [*tokenizer(s).input_ids, tokenizer.eos_token_id]]
    assert packed == expected[: len(packed)]


def test_prompts_are_padded_on_the_left(tmp_path, text_file, tokenizer_dir):
    datamodule = make_datamodule(
        tmp_path, text_file, tokenizer_dir, prompts=["All:", "First Citizen:\nBefore"]
    )
    batch = next(iter(datamodule.predict_dataloader()))
    short = datamodule.tokenizer("All:").input_ids
    width = batch["input_ids"].shape[1]
    assert batch["input_ids"][0, width - len(short) :].tolist() == short
    assert batch["attention_mask"][0].tolist() == [0] * (width - len(short)) + [1] * len(short)
    assert bool(batch["attention_mask"][1].all())
    assert batch["prompt"] == ["All:", "First Citizen:\nBefore"]


def test_tokenising_and_packing_are_cached(tmp_path, text_file, tokenizer_dir):
    first = make_datamodule(tmp_path, text_file, tokenizer_dir)
    files = [f["filename"] for f in first.train_dataset.cache_files]
    modified = {name: os.stat(name).st_mtime_ns for name in files}
    second = make_datamodule(tmp_path, text_file, tokenizer_dir)
    assert [f["filename"] for f in second.train_dataset.cache_files] == files
    assert {name: os.stat(name).st_mtime_ns for name in files} == modified
    # Another block size is another result, not a stale one.
    other = make_datamodule(tmp_path, text_file, tokenizer_dir, block_size=8)
    assert [f["filename"] for f in other.train_dataset.cache_files] != files
    assert all(len(block) == 8 for block in all_blocks(other.train_dataset))


def test_bpe_is_trained_on_the_corpus_once_and_decodes_losslessly(tmp_path, text_file):
    datamodule = CausalLMDataModule(
        train_files=str(text_file), bpe_vocab_size=VOCAB_SIZE, block_size=16,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    datamodule.setup("fit")
    tokenizer = datamodule.tokenizer
    assert len(tokenizer) == VOCAB_SIZE
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == 0
    sample = "First Citizen:\nSpeak, speak — ünïcödé!\n"
    assert tokenizer.decode(tokenizer(sample).input_ids) == sample
    cached = list((tmp_path / "cache" / "litlab-bpe").glob("*.json"))
    assert len(cached) == 1
    again = train_bpe_tokenizer(
        (row["text"] for row in datamodule._load_rows()[0]),
        VOCAB_SIZE,
        tmp_path / "cache" / "litlab-bpe",
    )
    assert again.get_vocab() == tokenizer.get_vocab()
    assert list((tmp_path / "cache" / "litlab-bpe").glob("*.json")) == cached


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train_files": "nowhere/corpus.txt"}, "data file not found"),
        ({"text_column": "sentence"}, "no column 'sentence'"),
        ({"bpe_vocab_size": 1000}, "exactly one of data.tokenizer"),
        ({"block_size": 4096}, "no block of block_size=4096"),
    ],
)
def test_clear_errors(tmp_path, text_file, tokenizer_dir, options, message):
    options = {"train_files": str(text_file), "tokenizer": str(tokenizer_dir), **options}

    def build() -> None:
        CausalLMDataModule(cache_dir=str(tmp_path / "cache"), **options).setup("fit")

    with pytest.raises(LitlabError, match=message):
        build()


def test_a_hub_dataset_without_validation_split_holds_out_its_tail(
    tmp_path, tokenizer_dir, monkeypatch
):
    lines = TINY_TEXT.splitlines(keepends=True)
    calls = []

    def load_dataset(name, config=None, **options):
        calls.append((name, config))
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": lines})})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    datamodule = CausalLMDataModule(
        dataset_name="someone/corpus", dataset_config="small", tokenizer=str(tokenizer_dir),
        block_size=16, val_fraction=0.25, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    datamodule.setup("fit")
    assert calls == [("someone/corpus", "small")]
    tokenizer = datamodule.tokenizer
    tail = lines[-round(len(lines) * 0.25) :]
    stream = [i for line in tail for i in tokenizer(line).input_ids]
    packed = [i for block in all_blocks(datamodule.val_dataset) for i in block]
    assert packed == stream[: len(packed)]
