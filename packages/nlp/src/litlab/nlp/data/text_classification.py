"""Text classification data: labelled texts from files or the Hugging Face hub, tokenised once
(Hugging Face ``datasets`` caches the result) and padded per batch."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, ClassVar

import datasets
from datasets import Dataset, load_dataset
from datasets.fingerprint import Hasher
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from litlab.core.data_facts import DataFacts
from litlab.core.data_root import DATA_ENV_VAR, resolve_data_dir
from litlab.core.errors import LitlabError
from litlab.core.number_types import NonNegativeInt, PositiveInt
from litlab.core.resumable_loader import ResumableDataLoader
from litlab.nlp.data.length_grouped_sampler import LengthGroupedSampler
from litlab.nlp.data.text_files import FILE_READERS, read_text_files
from litlab.nlp.data.tokenized_cache import tokenizer_cache_key
from litlab.nlp.data.word_tokenizer import cached_word_tokenizer
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)

STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("predict",),
}
LABELLED_SPLITS = ("train", "val", "test")
# Bumped when tokenising changes, so older cached splits are not reused.
ENCODING_VERSION = 1


class TextClassificationDataModule(LightningDataModule):
    """Texts with class labels, from files or a hub dataset, for
    :class:`~litlab.nlp.tasks.text_classification.TextClassifier`.

    Each split is a file (``.csv``, ``.tsv``, ``.json``, ``.jsonl``, ``.parquet`` or ``.txt``
    with one text a line; relative paths are under ``data_dir``) or, when ``dataset`` names a
    hub dataset, a split name of it. Texts are tokenised once with ``datasets.map``, whose
    cache makes later runs start at once; batches are padded to their longest text (right
    padding), so short texts cost little.

    ``tokenizer`` is a Hugging Face tokenizer (hub name or folder, for a pretrained
    transformer) or None: a word-level tokenizer learnt from the training texts (see
    :mod:`litlab.nlp.data.word_tokenizer`), for RNNs and word vectors.

    Batches are dicts: ``input_ids`` and ``attention_mask`` (B, T), ``labels`` (B,) for the
    labelled splits, ``id`` (a list) for predict.
    """

    # Where to get the files, said when one is missing.
    files_hint: ClassVar[str] = ""

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        predict: str | None = None,
        data_dir: str | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        id_column: str | None = None,
        classes: list[str] | None = None,
        tokenizer: str | None = None,
        vocab_size: PositiveInt | None = 20000,
        min_frequency: NonNegativeInt = 1,
        lowercase: bool = True,
        max_length: PositiveInt = 128,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt | None = None,
        group_by_length: bool = False,
        num_workers: NonNegativeInt = 0,
        cache_dir: str | None = None,
    ) -> None:
        """Args:
        train: Training split: a file, or a split name of ``dataset``.
        val: Validation split (picks the best checkpoint).
        test: Test split.
        predict: Texts to classify with ``litlab predict`` (labels not needed).
        data_dir: Folder relative file paths are in; default ``$LITLAB_DATA``, else ``./data``.
        dataset: A Hugging Face hub dataset (e.g. ``glue``); the splits are then split names.
        dataset_config: The hub dataset's configuration (e.g. ``sst2``).
        text_column: Column holding the text (a ``.txt`` file's lines are the texts).
        label_column: Column holding the label: a class index, or a class name from
            ``classes``.
        id_column: Column that names each predicted text in the predictions file; default:
            its row number.
        classes: Class names, index order. Needed for labels given as names; without it,
            labels must be indices and there are ``max label + 1`` classes (a hub dataset's
            ``ClassLabel`` column names its classes itself).
        tokenizer: Hugging Face tokenizer (hub name or folder); None: learn a word-level one
            from the training texts.
        vocab_size: Word-level tokenizer only: vocabulary size, ``[PAD]`` and ``[UNK]``
            included (None: every word).
        min_frequency: Word-level tokenizer only: rarer words are ``[UNK]``.
        lowercase: Word-level tokenizer only: lowercase the text.
        max_length: Longer texts are truncated to this many tokens.
        batch_size: Training batch size.
        eval_batch_size: Batch size of validation, test and predict; default ``batch_size``.
        group_by_length: Batch training texts of similar length together
            (:class:`~litlab.nlp.data.length_grouped_sampler.LengthGroupedSampler`): less
            padding, so a transformer trains several times faster on short texts.
        num_workers: Loader worker processes; batches are padded token ids, cheap enough to
            build in the main process.
        cache_dir: Cache of ``datasets`` (loaded files, tokenised splits) and of learnt
            word-level tokenizers; default: their usual caches under ``~/.cache``.
        """
        super().__init__()
        self.sources = {"train": train, "val": val, "test": test, "predict": predict}
        self.data_root = resolve_data_dir(data_dir)
        self.dataset_name = dataset
        self.dataset_config = dataset_config
        self.text_column = text_column
        self.label_column = label_column
        self.id_column = id_column
        self.classes = list(classes) if classes else None
        self.tokenizer_name = tokenizer
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.lowercase = lowercase
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.group_by_length = group_by_length
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        if max_length < 1 or batch_size < 1:
            raise LitlabError(
                f"max_length and batch_size must be >= 1, got {max_length} and {batch_size}"
            )
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.splits: dict[str, Dataset] = {}
        self._inferred_num_classes: int | None = None

    # ----- what the task asks

    @property
    def num_classes(self) -> int | None:
        """Number of classes: ``len(classes)``, else the largest label seen + 1 (after setup)."""
        return len(self.classes) if self.classes else self._inferred_num_classes

    @property
    def data_facts(self) -> DataFacts:
        """What the task and its network take from this data (see litlab.core.data_facts):
        the word-level tokenizer's vocab_size (a pretrained tokenizer goes with its model's
        own), and the tokenizer itself once set up."""
        return DataFacts(
            num_classes=self.num_classes,
            classes=tuple(self.classes) if self.classes else None,
            vocab_size=self.vocab_size if self.tokenizer_name is None else None,
            tokenizer_name=self.tokenizer_name,
            tokenizer=self.tokenizer,
        )

    # ----- loading

    def setup(self, stage: str) -> None:
        wanted = [name for name in STAGE_SPLITS[stage] if name not in self.splits]
        for name in wanted:
            if self.sources[name] is None:
                raise LitlabError(
                    f"no {name} data: `litlab {stage}` needs it. Set --data.init_args.{name} "
                    f"to a file or, with --data.init_args.dataset, a split name."
                )
        if self.tokenizer is None:
            self.tokenizer = self._load_tokenizer()
        for name in wanted:
            raw = self._load_raw(name)
            self._check_columns(name, raw)
            self.splits[name] = self._encode(name, raw)

    def _path(self, source: str) -> Path:
        path = Path(source).expanduser()
        return path if path.is_absolute() else self.data_root / path

    def _load_raw(self, name: str) -> Dataset:
        source = self.sources[name]
        if self.dataset_name is not None:
            try:
                return load_dataset(
                    self.dataset_name, self.dataset_config, split=source, cache_dir=self.cache_dir
                )
            except Exception as err:
                raise LitlabError(
                    f"cannot load split '{source}' of the hub dataset {self.dataset_name}"
                    f"{f' ({self.dataset_config})' if self.dataset_config else ''}: {err}. Check "
                    f"the names; offline, only datasets already in the Hugging Face cache load."
                ) from err
        path = self._path(source)
        reader = FILE_READERS.get(path.suffix.lower())
        if reader is None:
            raise LitlabError(
                f"{name} file {path}: unknown file type '{path.suffix}'. Use one of "
                f"{', '.join(FILE_READERS)}."
            )
        if not path.is_file():
            raise LitlabError(
                f"{name} file not found: {path}. {self.files_hint}Relative paths are under "
                f"--data.init_args.data_dir, else ${DATA_ENV_VAR}: point it at the folder."
            )
        raw = read_text_files([path], self.cache_dir, keep_linebreaks=False)
        if reader[0] == "text" and self.text_column != "text":
            # A text file's lines are the texts, whatever the other files call that column.
            raw = raw.rename_column("text", self.text_column)
        return raw

    def _describe(self, name: str) -> str:
        source = self.sources[name]
        if self.dataset_name is not None:
            return f"split '{source}' of {self.dataset_name}"
        return f"{name} file {self._path(source)}"

    def _check_columns(self, name: str, raw: Dataset) -> None:
        needed = [self.text_column]
        if name in LABELLED_SPLITS:
            needed.append(self.label_column)
        if name == "predict" and self.id_column:
            needed.append(self.id_column)
        missing = [column for column in needed if column not in raw.column_names]
        if missing:
            raise LitlabError(
                f"{self._describe(name)} has no column {', '.join(map(repr, missing))}; its "
                f"columns are {raw.column_names}. Set text_column/label_column/id_column to "
                f"the right names."
            )
        if name in LABELLED_SPLITS:
            feature = raw.features[self.label_column]
            if self.classes is None and isinstance(feature, datasets.ClassLabel):
                self.classes = list(feature.names)  # hub datasets name their classes
            self._check_labels(name, raw.unique(self.label_column))

    def _check_labels(self, name: str, labels: list[Any]) -> None:
        names = [label for label in labels if isinstance(label, str)]
        if names:
            unknown = sorted(set(names) - set(self.classes or []))
            if unknown:
                raise LitlabError(
                    f"{self._describe(name)} has label names {unknown[:5]} that are not in "
                    f"classes={self.classes}. List every class name in --data.init_args.classes "
                    f"(index order)."
                )
        indices = [label for label in labels if not isinstance(label, str)]
        if any(label is None for label in indices):
            raise LitlabError(f"{self._describe(name)} has rows without a label")
        bad = [label for label in indices if int(label) != label or label < 0]
        if self.classes:
            bad += [label for label in indices if label >= len(self.classes)]
        if bad:
            hidden = " (GLUE hides its test labels as -1: test on the validation split)"
            raise LitlabError(
                f"{self._describe(name)} has labels out of range: {sorted(set(bad))[:5]}. Labels "
                f"are class indices 0..num_classes-1 or names from classes"
                f"{hidden if -1 in bad else ''}."
            )
        if indices and not self.classes:
            self._inferred_num_classes = max(self._inferred_num_classes or 0, int(max(indices)) + 1)

    def _load_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer_name is not None:
            tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(self.tokenizer_name))
            if tokenizer.pad_token is None:
                # Decoder-only models (GPT-2, Llama) have no padding token; any id works, as
                # the attention mask hides padding, and HFSequenceClassifier makes the same
                # choice for the model.
                tokenizer.pad_token = tokenizer.eos_token
            return tokenizer
        if self.sources["train"] is None:
            raise LitlabError(
                "the word-level tokenizer (tokenizer: null) is learnt from the training texts, "
                "so the train split is needed even to test or predict. Set "
                "--data.init_args.train, or a pretrained --data.init_args.tokenizer."
            )
        raw = self._load_raw("train")
        self._check_columns("train", raw)
        return cached_word_tokenizer(
            raw[self.text_column],
            Path(self.cache_dir or datasets.config.HF_DATASETS_CACHE) / "litlab-word-tokenizers",
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            lowercase=self.lowercase,
        )

    def _encode(self, name: str, raw: Dataset) -> Dataset:
        columns = {"text": self.text_column}
        if name in LABELLED_SPLITS:
            columns["label"] = self.label_column
        if name == "predict" and self.id_column:
            columns["id"] = self.id_column
        options = {
            "max_length": self.max_length,
            "columns": columns,
            "class_index": {c: i for i, c in enumerate(self.classes or [])},
            "with_ids": name == "predict",
        }
        truncation = {"max_length": self.max_length, "side": self.tokenizer.truncation_side}
        fingerprint = Hasher.hash(
            [
                ENCODING_VERSION,
                raw._fingerprint,
                tokenizer_cache_key(self.tokenizer, truncation),
                options,
            ]
        )
        encoded = raw.map(
            _encode_batch,
            batched=True,
            with_indices=True,
            remove_columns=raw.column_names,
            fn_kwargs={"tokenizer": self.tokenizer, **options},
            new_fingerprint=fingerprint,
            desc=f"Tokenising {name}",
        )
        log.info("%s: %d texts from %s", name, len(encoded), self._describe(name))
        return encoded

    # ----- loaders

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        if name not in self.splits:
            raise LitlabError(f"the {name} split is not set up; call setup() first")
        split = self.splits[name]
        sampler = None
        if shuffle and self.group_by_length:
            lengths = [len(ids) for ids in split["input_ids"]]
            sampler, shuffle = LengthGroupedSampler(lengths, self.batch_size), False
        # Resumable in the middle of an epoch: the order is drawn again, the batches already
        # trained on are skipped.
        return ResumableDataLoader(
            split,
            batch_size=self.batch_size if sampler or shuffle else self.eval_batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=PadCollator(self.tokenizer),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)


def _encode_batch(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    columns: dict[str, str],
    class_index: dict[str, int],
    with_ids: bool,
) -> dict[str, list[Any]]:
    texts = [text if isinstance(text, str) else "" for text in batch[columns["text"]]]
    encoded = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    out = {"input_ids": encoded["input_ids"]}
    if "label" in columns:
        out["labels"] = [
            class_index[label] if isinstance(label, str) else int(label)
            for label in batch[columns["label"]]
        ]
    if with_ids:
        out["id"] = [str(i) for i in batch[columns["id"]]] if "id" in columns else indices
    return out


class PadCollator:
    """Pads a batch's token ids on the right to its longest sequence, with transformers'
    ``DataCollatorWithPadding`` (``input_ids``, ``attention_mask``, ``labels``); predict's
    ``id`` stays a list, and a batch of empty texts still gets one (padded) position."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Args:
        tokenizer: The split's tokenizer; its ``pad_token_id`` pads.
        """
        if tokenizer.padding_side != "right":
            # Right padding whatever the tokenizer's default, leaving the caller's one alone.
            tokenizer = copy.deepcopy(tokenizer)
            tokenizer.padding_side = "right"
        self.pad = DataCollatorWithPadding(tokenizer)
        self.pad_empty = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=1)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        # The tokenizer would make a tensor of the ids (or fail on names): they stay a list.
        features = [{key: value for key, value in row.items() if key != "id"} for row in rows]
        pad = self.pad if any(len(row["input_ids"]) for row in rows) else self.pad_empty
        batch = dict(pad(features))
        if "id" in rows[0]:
            batch["id"] = [row["id"] for row in rows]
        return batch


class SST2DataModule(TextClassificationDataModule):
    """SST-2, the binary Stanford Sentiment Treebank of GLUE (Socher et al. 2013): 67,349
    training sentences and phrases, 872 validation sentences, labels 0 negative, 1 positive.

    Reads GLUE's files ``<data_dir>/SST-2/{train,dev,test}.tsv`` (from
    https://dl.fbaipublicfiles.com/glue/data/SST-2.zip). GLUE's test labels are hidden, so
    ``dev.tsv`` is both the validation and the test split, as papers report it;
    ``test.tsv`` (unlabelled) is what ``litlab predict`` classifies. Options: see
    :class:`TextClassificationDataModule`.
    """

    files_hint = "GLUE's SST-2 files are in https://dl.fbaipublicfiles.com/glue/data/SST-2.zip. "

    def __init__(
        self,
        data_dir: str | None = None,
        max_length: PositiveInt = 64,
        **kwargs: Any,
    ) -> None:
        """Args:
        data_dir: Data root holding ``SST-2/``; default ``$LITLAB_DATA``, else ``./data``.
        max_length: Longer sentences are truncated to this many tokens (the longest SST-2
            sentence has 52 words).
        **kwargs: The tokenizer and loader options of :class:`TextClassificationDataModule`
            (``tokenizer``, ``vocab_size``, ``batch_size``, ``group_by_length``, ...); the
            files, columns and classes are SST-2's.
        """
        super().__init__(
            train="SST-2/train.tsv",
            val="SST-2/dev.tsv",
            test="SST-2/dev.tsv",
            predict="SST-2/test.tsv",
            data_dir=data_dir,
            dataset=None,
            dataset_config=None,
            text_column="sentence",
            label_column="label",
            id_column="index",
            classes=["negative", "positive"],
            max_length=max_length,
            **kwargs,
        )
