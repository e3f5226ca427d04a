"""A text corpus for causal language modelling: loaded with ``datasets``, tokenised and packed
into fixed blocks, each step cached by ``datasets``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import datasets
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from litlab.core.data_facts import DataFacts
from litlab.core.data_root import resolve_data_dir
from litlab.core.errors import LitlabError
from litlab.core.number_types import NonNegativeInt, OpenUnitInterval, PositiveInt
from litlab.core.resumable_loader import ResumableDataLoader
from litlab.nlp.data.bpe_tokenizer import train_bpe_tokenizer
from litlab.nlp.data.text_files import FILE_READERS, read_text_files
from litlab.nlp.data.tokenized_cache import tokenizer_cache_key
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # labels torch's cross-entropy (and Hugging Face) skip
# Bumped when tokenising or packing changes, so older cache files are not reused.
PIPELINE_VERSION = "1"


class CausalLMDataModule(LightningDataModule):
    """Text from files or a hub dataset, tokenised, and (by default) packed into blocks.

    Packing concatenates the tokens of all rows of a split, in order, and cuts them into
    blocks of exactly ``block_size`` tokens; only the last, incomplete block is dropped. Each
    batch holds ``input_ids``, ``attention_mask`` and ``labels`` (= ``input_ids``; the model
    shifts them). Without packing, each row is one sequence truncated to ``block_size`` and
    padded on the right to the batch's longest, with ``attention_mask`` 0 and labels
    ``-100`` on the padding.

    Tokenising and packing run as batched ``datasets.map`` calls with fingerprints taken from
    the data, the tokenizer and the settings, so a second run reads the cached result.
    ``litlab predict`` generates from ``prompts`` (left-padded batches).
    """

    def __init__(
        self,
        train_files: str | list[str] | None = None,
        val_files: str | list[str] | None = None,
        dataset_name: str | None = None,
        dataset_config: str | None = None,
        text_column: str = "text",
        tokenizer: str | None = None,
        bpe_vocab_size: PositiveInt | None = None,
        block_size: PositiveInt = 128,
        batch_size: PositiveInt = 16,
        val_fraction: OpenUnitInterval = 0.1,
        pack: bool = True,
        append_eos: bool = False,
        prompts: list[str] | None = None,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        num_workers: NonNegativeInt = 0,
        num_proc: PositiveInt | None = None,
    ) -> None:
        """Args:
        train_files: Training file(s): .txt (one row per line, line breaks kept), .csv, .tsv,
            .json/.jsonl or .parquet; relative paths are looked up under the data root first.
        val_files: Validation file(s), same rules; default: the last ``val_fraction`` of the
            training rows.
        dataset_name: A Hugging Face hub dataset instead of files (needs the network or the
            datasets cache); its ``validation`` split is used if it has one.
        dataset_config: The hub dataset's configuration name.
        text_column: Column holding the text (``text`` for .txt files).
        tokenizer: Tokenizer name or folder (a local folder, an offline ``gt_*`` package, or a
            hub name), e.g. the folder of the model being fine-tuned.
        bpe_vocab_size: Instead of ``tokenizer``: train a byte-level BPE of this many tokens on
            the training rows (cached), for a model pre-trained from scratch.
        block_size: Tokens per sequence (the packed block length, or the truncation length).
        batch_size: Sequences per batch.
        val_fraction: Share of the training rows held out for validation when there is no
            validation file or split; the held-out rows are the last ones (a contiguous tail,
            so validation text is not interleaved with training text).
        pack: Pack rows into full blocks; off: one padded row per sequence.
        append_eos: Append the tokenizer's end-of-text token to every row (rows that are whole
            documents or sentences); leave off for .txt files, whose rows are lines.
        prompts: Texts that ``litlab predict`` continues.
        data_dir: Data root for relative paths; default ``$LITLAB_DATA``, else ``./data``.
        cache_dir: Where ``datasets`` caches loaded and processed data and where a trained BPE
            is cached; default the ``datasets`` cache (``$HF_DATASETS_CACHE``).
        num_workers: DataLoader worker processes.
        num_proc: Processes for tokenising (``datasets.map``); default one.
        """
        super().__init__()
        if (dataset_name is None) == (train_files is None):
            raise LitlabError(
                "CausalLMDataModule needs exactly one corpus: give data.train_files (files) or "
                "data.dataset_name (a hub dataset)."
            )
        if (tokenizer is None) == (bpe_vocab_size is None):
            raise LitlabError(
                "CausalLMDataModule needs exactly one of data.tokenizer (a tokenizer name or "
                "folder, e.g. the model's) and data.bpe_vocab_size (train a BPE on the corpus)."
            )
        if not 0.0 < val_fraction < 1.0:
            raise LitlabError(f"data.val_fraction must lie in (0, 1), got {val_fraction}.")
        if block_size < 2:
            raise LitlabError(f"data.block_size must be at least 2 tokens, got {block_size}.")
        self.save_hyperparameters(logger=False)
        self.train_files = _as_list(train_files)
        self.val_files = _as_list(val_files)
        self.dataset_name = dataset_name
        self.dataset_config = dataset_config
        self.text_column = text_column
        self.tokenizer_name = tokenizer
        self.bpe_vocab_size = bpe_vocab_size
        self.block_size = block_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.pack = pack
        self.append_eos = append_eos
        self.prompts = prompts
        self.data_root = resolve_data_dir(data_dir)
        self.cache_dir = cache_dir
        self.num_workers = num_workers
        self.num_proc = num_proc
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.train_dataset: datasets.Dataset | None = None
        self.val_dataset: datasets.Dataset | None = None

    # ----- tokenizer

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer; a BPE trained on the corpus exists only after ``setup``."""
        if self._tokenizer is None:
            if self.tokenizer_name is None:
                raise LitlabError(
                    "the BPE tokenizer is trained in CausalLMDataModule.setup(); call setup() "
                    "before using the tokenizer."
                )
            self._tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(self.tokenizer_name))
        return self._tokenizer

    @property
    def data_facts(self) -> DataFacts:
        """What the task and its network take from this data (see litlab.core.data_facts): a
        BPE's vocab_size, the block size, and the tokenizer once loaded (setup loads it)."""
        return DataFacts(
            vocab_size=self.bpe_vocab_size,
            block_size=self.block_size,
            tokenizer_name=self.tokenizer_name,
            tokenizer=self._tokenizer,
        )

    @property
    def pad_token_id(self) -> int:
        tokenizer = self.tokenizer
        for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
            if token_id is not None:
                return token_id
        # Padding is always masked out (attention and labels), so any id will do.
        return 0

    # ----- preparation

    def prepare_data(self) -> None:
        # Fills the datasets caches once (rank zero); setup() then reads them on every rank.
        self._build_splits()

    def setup(self, stage: str) -> None:
        if self.tokenizer_name is not None:
            self.tokenizer  # noqa: B018 (loads it: the task reads it from data_facts)
        if self.train_dataset is None:
            self.train_dataset, self.val_dataset = self._build_splits()
            log.info(
                "Causal LM data: %d training and %d validation sequences of up to %d tokens",
                len(self.train_dataset), len(self.val_dataset), self.block_size,
            )  # fmt: skip

    def _build_splits(self) -> tuple[datasets.Dataset, datasets.Dataset]:
        train_rows, val_rows = self._load_rows()
        if self._tokenizer is None and self.bpe_vocab_size is not None:
            bpe_cache = Path(self.cache_dir or datasets.config.HF_DATASETS_CACHE) / "litlab-bpe"
            self._tokenizer = train_bpe_tokenizer(
                (text or "" for text in train_rows[self.text_column]),
                self.bpe_vocab_size,
                bpe_cache,
            )
        splits = []
        for name, rows in (("train", train_rows), ("validation", val_rows)):
            tokens = self._tokenize(rows)
            sequences = self._pack(tokens) if self.pack else self._keep_predictable(tokens)
            if len(sequences) == 0:
                wanted = (
                    f"block of block_size={self.block_size} tokens"
                    if self.pack
                    else "row of two tokens or more"
                )
                raise LitlabError(
                    f"the {name} split gives no {wanted} "
                    f"({sum(len(ids) for ids in tokens['input_ids'])} tokens in {len(rows)} "
                    f"rows). Use more text or a smaller data.block_size."
                )
            splits.append(sequences)
        return splits[0], splits[1]

    def _load_rows(self) -> tuple[datasets.Dataset, datasets.Dataset]:
        if self.dataset_name is not None:
            corpus = datasets.load_dataset(
                self.dataset_name, self.dataset_config, cache_dir=self.cache_dir
            )
            train, val = corpus["train"], corpus.get("validation")
        else:
            train = self._load_files(self.train_files)
            val = self._load_files(self.val_files) if self.val_files else None
        if val is None:
            # The tail, not a random sample: neighbouring lines of one text are not split
            # between training and validation.
            held_out = max(1, round(len(train) * self.val_fraction))
            if held_out >= len(train):
                raise LitlabError(
                    f"the training data has {len(train)} rows: too few to hold out "
                    f"val_fraction={self.val_fraction}. Give data.val_files."
                )
            cut = len(train) - held_out
            train, val = train.select(range(cut)), train.select(range(cut, len(train)))
        return self._text_only(train, "training"), self._text_only(val, "validation")

    def _load_files(self, files: Sequence[str]) -> datasets.Dataset:
        paths = [self._find_file(name) for name in files]
        suffixes = {path.suffix.lower() for path in paths}
        if len(suffixes) > 1 or not suffixes <= FILE_READERS.keys():
            raise LitlabError(
                f"cannot read {', '.join(map(str, paths))}: the files must share one suffix "
                f"among {', '.join(FILE_READERS)}."
            )
        return read_text_files(paths, self.cache_dir, keep_linebreaks=True)

    def _find_file(self, name: str) -> Path:
        path = Path(os.path.expanduser(name))
        candidates = [path] if path.is_absolute() else [self.data_root / path, path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise LitlabError(
            f"data file not found: {name} (looked for {' and '.join(map(str, candidates))}). "
            f"Give a path relative to the data root ($LITLAB_DATA or --data.data_dir) or an "
            f"absolute one."
        )

    def _text_only(self, rows: datasets.Dataset, split: str) -> datasets.Dataset:
        if self.text_column not in rows.column_names:
            raise LitlabError(
                f"the {split} data has no column '{self.text_column}' (it has "
                f"{', '.join(rows.column_names)}). Set data.text_column."
            )
        others = [name for name in rows.column_names if name != self.text_column]
        return rows.remove_columns(others) if others else rows

    # ----- tokenising and packing

    def _tokenize(self, rows: datasets.Dataset) -> datasets.Dataset:
        tokenizer, column = self.tokenizer, self.text_column
        eos = [tokenizer.eos_token_id] if self.append_eos else []
        if self.append_eos and tokenizer.eos_token_id is None:
            raise LitlabError(
                "data.append_eos needs a tokenizer with an end-of-text token; this one has none."
            )

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
            texts = [text or "" for text in batch[column]]
            ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
            return {"input_ids": [row + eos for row in ids]}

        return rows.map(
            tokenize,
            batched=True,
            remove_columns=rows.column_names,
            num_proc=self.num_proc,
            new_fingerprint=_fingerprint(
                rows, "tokenize", tokenizer_cache_key(tokenizer, None), eos
            ),
            desc="Tokenising",
        )

    def _pack(self, tokens: datasets.Dataset) -> datasets.Dataset:
        block_size = self.block_size

        def pack(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
            flat = list(chain.from_iterable(batch["input_ids"]))
            usable = len(flat) - len(flat) % block_size
            return {"input_ids": [flat[i : i + block_size] for i in range(0, usable, block_size)]}

        # The whole split as one batch: only the split's final partial block is dropped
        # (batches of rows would each drop their own tail).
        return tokens.map(
            pack,
            batched=True,
            batch_size=None,
            remove_columns=tokens.column_names,
            new_fingerprint=_fingerprint(tokens, "pack", block_size),
            desc="Packing",
        )

    def _keep_predictable(self, tokens: datasets.Dataset) -> datasets.Dataset:
        # A row of fewer than two tokens has no next token to predict.
        return tokens.filter(
            lambda batch: [len(ids) >= 2 for ids in batch["input_ids"]],
            batched=True,
            new_fingerprint=_fingerprint(tokens, "keep-predictable"),
        )

    # ----- loaders

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        if not self.prompts:
            raise LitlabError(
                "litlab predict needs prompts to continue: give --data.prompts "
                '\'["First prompt", "Second prompt"]\' (or data.prompts in the YAML).'
            )
        return DataLoader(
            self.prompts,
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=PromptCollator(self.tokenizer, self.pad_token_id),
        )

    def _loader(self, dataset: datasets.Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise LitlabError("CausalLMDataModule.setup() must run before its loaders are used.")
        # Resumable in the middle of an epoch: the order is drawn again, the batches already
        # trained on are skipped.
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=CausalLMCollator(self.pad_token_id, self.block_size),
        )


class CausalLMCollator:
    """Rows of token ids -> ``input_ids``, ``attention_mask``, ``labels``, padded on the right
    (padding: mask 0, label -100) and truncated to ``max_length``."""

    def __init__(self, pad_token_id: NonNegativeInt, max_length: PositiveInt) -> None:
        self.pad_token_id = pad_token_id
        self.max_length = max_length

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        sequences = [row["input_ids"][: self.max_length] for row in rows]
        length = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, ids in enumerate(sequences):
            input_ids[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[i, : len(ids)] = 1
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class PromptCollator:
    """Prompts -> ``input_ids`` and ``attention_mask`` padded on the left, so that every
    prompt ends where generation starts; ``prompt`` keeps the texts."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_token_id: NonNegativeInt) -> None:
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id

    def __call__(self, prompts: list[str]) -> dict[str, Any]:
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        start = self.tokenizer.bos_token_id
        start = self.tokenizer.eos_token_id if start is None else start
        # An empty prompt starts from the beginning-of-text token: generation needs one.
        encoded = [ids or ([start] if start is not None else []) for ids in encoded]
        if not all(encoded):
            raise LitlabError("an empty prompt needs a tokenizer with a BOS or EOS token.")
        length = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, length - len(ids) :] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[i, length - len(ids) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "prompt": list(prompts)}


def _as_list(files: str | list[str] | None) -> list[str]:
    if files is None:
        return []
    return [files] if isinstance(files, str) else list(files)


def _fingerprint(dataset: datasets.Dataset, *parts: Any) -> str:
    return datasets.fingerprint.Hasher.hash([PIPELINE_VERSION, dataset._fingerprint, *parts])
