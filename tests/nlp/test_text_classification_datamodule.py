"""Text classification data: files of every format, hub-free; tokenised once; padded per batch."""

import copy
import json
from pathlib import Path

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.nlp.data.length_grouped_sampler import LengthGroupedSampler
from litlab.nlp.data.text_classification import SST2DataModule, TextClassificationDataModule
from litlab.nlp.data.word_tokenizer import cached_word_tokenizer, train_word_tokenizer

ROWS = [
    ("a charming and often affecting journey .", 1),
    ("the \" director 's cut is worse", 0),  # an unmatched quote, as SST-2 has
    ("null", 0),  # text, not a missing value
    ("an utterly fantastic , moving film with great acting", 1),
]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def write_tsv(path: Path, rows=ROWS, header=("sentence", "label")) -> Path:
    lines = ["\t".join(header)] + [f"{text}\t{label}" for text, label in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path: Path, rows=ROWS) -> Path:
    import csv

    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    return path


def datamodule(tmp_path: Path, **options) -> TextClassificationDataModule:
    return TextClassificationDataModule(
        data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), **options
    )


@pytest.mark.parametrize(
    ("suffix", "writer", "text_column"),
    [(".tsv", write_tsv, "sentence"), (".csv", write_csv, "text"), (".jsonl", write_jsonl, "text")],
)
def test_every_file_format_loads_every_row(tmp_path, suffix, writer, text_column):
    writer(tmp_path / f"train{suffix}")
    dm = datamodule(tmp_path, train=f"train{suffix}", val=f"train{suffix}", text_column=text_column)
    dm.setup("fit")
    assert len(dm.splits["train"]) == len(ROWS)
    assert dm.splits["train"]["labels"] == [label for _, label in ROWS]
    assert dm.num_classes == 2
    tokens = dm.tokenizer.convert_ids_to_tokens(dm.splits["train"]["input_ids"][1])
    assert tokens == ["the", '"', "director", "'s", "cut", "is", "worse"]
    assert dm.tokenizer.convert_ids_to_tokens(dm.splits["train"]["input_ids"][2]) == ["null"]


def test_parquet_and_json_files(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    records = [{"text": t, "label": y} for t, y in ROWS]
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    Dataset.from_list(records, features=features).to_parquet(str(tmp_path / "train.parquet"))
    (tmp_path / "val.json").write_text(json.dumps(records))
    dm = datamodule(tmp_path, train="train.parquet", val="val.json")
    dm.setup("fit")
    assert dm.splits["train"]["input_ids"] == dm.splits["val"]["input_ids"]
    assert dm.classes == ["neg", "pos"]  # from the ClassLabel column


def test_batches_are_padded_to_their_longest_text(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    dm = datamodule(tmp_path, train="train.tsv", val="train.tsv", text_column="sentence")
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    lengths = [len(ids) for ids in dm.splits["val"]["input_ids"]]
    assert batch["input_ids"].shape == (4, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == dm.tokenizer.pad_token_id).all()
    assert batch["labels"].tolist() == [1, 0, 0, 1]


def test_max_length_truncates(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    dm = datamodule(
        tmp_path, train="train.tsv", val="train.tsv", text_column="sentence", max_length=3
    )
    dm.setup("fit")
    assert max(len(ids) for ids in dm.splits["train"]["input_ids"]) == 3


def test_pretrained_tokenizer_and_class_names(tmp_path):
    rows = [(text, "positive" if label else "negative") for text, label in ROWS]
    write_csv(tmp_path / "train.csv", rows)
    dm = datamodule(
        tmp_path,
        train="train.csv",
        val="train.csv",
        tokenizer=MINILM,
        classes=["negative", "positive"],
    )
    dm.setup("fit")
    assert dm.splits["train"]["labels"] == [1, 0, 0, 1]
    ids = dm.splits["train"]["input_ids"][0]
    assert ids[0] == dm.tokenizer.cls_token_id
    assert ids[-1] == dm.tokenizer.sep_token_id


def test_predict_rows_are_named_by_the_id_column_or_the_row(tmp_path):
    write_tsv(tmp_path / "test.tsv", [("good", 0), ("bad", 1)], header=("sentence", "index"))
    (tmp_path / "lines.txt").write_text("good\nbad\nugly\n")
    write_tsv(tmp_path / "train.tsv")
    dm = datamodule(
        tmp_path, train="train.tsv", predict="test.tsv", text_column="sentence", id_column="index"
    )
    dm.setup("predict")
    assert next(iter(dm.predict_dataloader()))["id"] == ["0", "1"]
    dm = datamodule(tmp_path, train="train.tsv", predict="lines.txt", text_column="sentence")
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["id"] == [0, 1, 2]
    assert "labels" not in batch


def test_tokenised_splits_come_from_the_cache(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    first = datamodule(tmp_path, train="train.tsv", val="train.tsv", text_column="sentence")
    first.setup("fit")
    second = datamodule(tmp_path, train="train.tsv", val="train.tsv", text_column="sentence")
    second.setup("fit")
    assert second.splits["train"].cache_files == first.splits["train"].cache_files
    assert second.splits["train"]["input_ids"] == first.splits["train"]["input_ids"]


def test_a_cached_split_truncated_otherwise_is_not_reused(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    options = {"train": "train.tsv", "val": "train.tsv", "text_column": "sentence"}
    right = datamodule(tmp_path, max_length=3, **options)
    right.setup("fit")
    left = datamodule(tmp_path, max_length=3, **options)
    left.tokenizer = copy.deepcopy(right.tokenizer)
    left.tokenizer.truncation_side = "left"
    left.setup("fit")
    assert right.splits["train"]["input_ids"][0] == right.tokenizer("a charming and")["input_ids"]
    assert (
        left.splits["train"]["input_ids"][0] == left.tokenizer("affecting journey .")["input_ids"]
    )


def test_group_by_length_batches_similar_lengths(tmp_path):
    rows = [(" ".join(["word"] * n), n % 2) for n in range(1, 65)]
    write_tsv(tmp_path / "train.tsv", rows)
    dm = datamodule(
        tmp_path,
        train="train.tsv",
        val="train.tsv",
        text_column="sentence",
        batch_size=8,
        group_by_length=True,
    )
    dm.setup("fit")
    widths = [batch["input_ids"].shape[1] for batch in dm.train_dataloader()]
    assert sum(widths) == sum(range(8, 65, 8))  # each batch holds 8 consecutive lengths


def test_length_grouped_sampler_is_a_shuffled_permutation():
    lengths = torch.randint(1, 50, (103,)).tolist()
    sampler = LengthGroupedSampler(lengths, batch_size=10, window_batches=3)
    torch.manual_seed(0)
    order = list(sampler)
    assert sorted(order) == list(range(103))
    assert order[-3:] == order[100:]  # the short batch comes last
    batches = [order[i : i + 10] for i in range(0, 100, 10)]
    for batch in batches:  # within a window, each batch is a run of sorted lengths
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)
    torch.manual_seed(1)
    assert list(sampler) != order


def test_word_tokenizer_is_deterministic_and_cached(tmp_path):
    texts = ["b a c", "a b", "c a", "d"]
    tokenizer = train_word_tokenizer(texts, vocab_size=5)
    # by count, ties alphabetical; [PAD] 0, [UNK] 1
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "a", "b", "c"]
    assert tokenizer("a D e")["input_ids"] == [2, 1, 1]
    cached = cached_word_tokenizer(texts, tmp_path, vocab_size=5)
    again = cached_word_tokenizer(texts, tmp_path, vocab_size=5)
    assert len(list(tmp_path.iterdir())) == 1
    assert again.get_vocab() == cached.get_vocab() == tokenizer.get_vocab()
    cached_word_tokenizer([*texts, "e"], tmp_path, vocab_size=5)
    assert len(list(tmp_path.iterdir())) == 2


def test_word_tokenizer_splits_raw_text_like_the_treebank():
    tokenizer = train_word_tokenizer([], vocab_size=None)
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    words = [w for w, _ in pre.pre_tokenize_str("It doesn't work, it's a well-made mess...")]
    assert words == ["It", "does", "n't", "work", ",", "it", "'s", "a", "well-made", "mess", "..."]


# ----- errors


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    dm = datamodule(tmp_path, train="nope.tsv", val="nope.tsv")
    with pytest.raises(LitlabError, match=r"train file not found: .*nope\.tsv.*data_dir"):
        dm.setup("fit")


def test_unknown_column_lists_the_columns(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    dm = datamodule(tmp_path, train="train.tsv", val="train.tsv", text_column="review")
    with pytest.raises(LitlabError, match=r"no column 'review'.*\['sentence', 'label'\]"):
        dm.setup("fit")


def test_labels_out_of_range(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", 2)])
    dm = datamodule(
        tmp_path, train="train.tsv", val="train.tsv", text_column="sentence", classes=["n", "p"]
    )
    with pytest.raises(LitlabError, match=r"labels out of range: \[2\]"):
        dm.setup("fit")
    write_tsv(tmp_path / "hidden.tsv", [("good", -1)])
    dm = datamodule(tmp_path, train="train.tsv", test="hidden.tsv", text_column="sentence")
    with pytest.raises(LitlabError, match="GLUE hides its test labels"):
        dm.setup("test")


def test_label_names_need_classes(tmp_path):
    write_csv(tmp_path / "train.csv", [("good", "pos"), ("bad", "neg")])
    dm = datamodule(tmp_path, train="train.csv", val="train.csv", classes=["neg"])
    with pytest.raises(LitlabError, match=r"label names \['pos'\].*classes"):
        dm.setup("fit")


def test_unknown_suffix_and_missing_split(tmp_path):
    dm = datamodule(tmp_path, train="train.xlsx", val="train.xlsx")
    with pytest.raises(LitlabError, match=r"unknown file type '\.xlsx'"):
        dm.setup("fit")
    write_tsv(tmp_path / "train.tsv")
    dm = datamodule(tmp_path, train="train.tsv", text_column="sentence")
    with pytest.raises(LitlabError, match="no test data"):
        dm.setup("test")


def test_sst2_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(LitlabError, match=r"SST-2\.zip"):
        SST2DataModule(data_dir=str(tmp_path)).setup("fit")


# ----- the real data


def test_real_sst2_splits(data_root, tmp_path):
    dm = SST2DataModule(cache_dir=str(tmp_path))
    for stage in ("fit", "test", "predict"):
        dm.setup(stage)
    sizes = {name: len(split) for name, split in dm.splits.items()}
    assert sizes == {"train": 67349, "val": 872, "test": 872, "predict": 1821}
    assert dm.num_classes == 2
    assert sum(dm.splits["val"]["labels"]) == 444  # positive dev sentences
    assert len(dm.tokenizer) == 14745  # every training word ([PAD], [UNK] and 14,743 words)
    assert next(iter(dm.predict_dataloader()))["id"][:3] == ["0", "1", "2"]


def test_sst2_offers_the_loader_options_and_fixes_its_files_columns_and_classes():
    """SST2DataModule hands the base's options on through **kwargs (declared once, there);
    jsonargparse drops from the config what SST-2 fixes."""
    from jsonargparse import ArgumentParser

    from litlab.nlp.data.text_classification import SST2DataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(SST2DataModule, "data")
    defaults = parser.get_defaults()["data"]
    assert sorted(defaults.keys()) == [
        "batch_size", "cache_dir", "data_dir", "eval_batch_size", "group_by_length",
        "lowercase", "max_length", "min_frequency", "num_workers", "tokenizer", "vocab_size",
    ]  # fmt: skip
    assert (defaults["max_length"], defaults["vocab_size"]) == (64, 20000)
    with pytest.raises(Exception, match="train"):
        parser.parse_args(["--data.train", "other.tsv"])
