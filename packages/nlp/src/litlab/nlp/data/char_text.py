"""Character-level language modelling on one plain-text file (Tiny Shakespeare by default)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from litlab.core.data_facts import DataFacts
from litlab.core.data_root import DATA_ENV_VAR, resolve_data_dir
from litlab.core.errors import LitlabError
from litlab.core.number_types import NonNegativeInt, OpenUnitInterval, PositiveInt
from litlab.core.ordered_sharding import shard_in_order
from litlab.core.resumable_loader import ResumableDataLoader
from litlab.core.seeding import derive_seed, run_seed

log = logging.getLogger(__name__)

# Targets that no prediction is scored against (cross_entropy's ignore_index).
IGNORE_INDEX = -1


class CharVocabulary:
    """The sorted set of characters of a text; a character's id is its rank."""

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self._codepoints = np.array([ord(c) for c in chars], dtype=np.uint32)
        self._index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocabulary:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` outside the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, text: str) -> torch.Tensor:
        """Token ids (int64) of ``text``, whose characters must all be in the vocabulary."""
        if unknown := self.unknown(text):
            raise ValueError(f"characters outside the vocabulary: {''.join(unknown)!r}")
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return torch.from_numpy(np.searchsorted(self._codepoints, codepoints).astype(np.int64))

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in ids)


class RandomBlocks(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(tokens[o : o + T], tokens[o + 1 : o + T + 1])`` for the start offset ``o`` it is
    indexed with; every offset with a full target block is valid."""

    def __init__(self, tokens: torch.Tensor, block_size: PositiveInt) -> None:
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.tokens) - self.block_size

    def __getitem__(self, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= offset < len(self):
            raise IndexError(f"offset {offset} out of range(0, {len(self)})")
        block = self.tokens[offset : offset + self.block_size + 1]
        return block[:-1], block[1:]


class RandomOffsetSampler(Sampler[int]):
    """``num_samples`` start offsets drawn uniformly with replacement (nanoGPT's
    ``torch.randint``), a fresh draw every epoch from ``(seed, epoch)`` alone.

    Lightning calls ``set_epoch`` at the start of each epoch.
    """

    def __init__(self, num_offsets: PositiveInt, num_samples: NonNegativeInt, seed: int) -> None:
        self.num_offsets = num_offsets
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        offsets = torch.randint(self.num_offsets, (self.num_samples,), generator=generator)
        return iter(offsets.tolist())

    def __len__(self) -> int:
        return self.num_samples


class ConsecutiveBlocks(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``tokens`` cut into consecutive, non-overlapping blocks of ``block_size`` predictions.

    Every token after the first is a target exactly once. The last block is padded (inputs
    with 0, targets with ``IGNORE_INDEX``) so that all blocks have one shape.
    """

    def __init__(self, tokens: torch.Tensor, block_size: PositiveInt) -> None:
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return -(-(len(self.tokens) - 1) // self.block_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # IndexError also ends plain iteration over the dataset.
        if not 0 <= index < len(self):
            raise IndexError(f"block {index} out of range(0, {len(self)})")
        start = index * self.block_size
        block = self.tokens[start : start + self.block_size + 1]
        x, y = block[:-1], block[1:]
        pad = self.block_size - len(y)
        if pad:
            x = torch.cat([x, x.new_zeros(pad)])
            y = torch.cat([y, y.new_full((pad,), IGNORE_INDEX)])
        return x, y


class CharTextDataModule(LightningDataModule):
    """Characters of a plain-text file as token ids, for next-character prediction.

    The vocabulary is the sorted set of the file's characters (``vocabulary``, with
    ``encode``/``decode``; a task reaches it as ``data_facts.vocabulary``). The first
    ``1 - val_fraction`` of the text trains and the rest validates (a contiguous split, as in
    nanoGPT, so no validation text is seen in training).

    Training batches are blocks at random offsets of the training text, ``samples_per_epoch``
    of them per epoch, drawn afresh each epoch from ``(shuffle_seed, epoch)``; an "epoch" is
    thus only the interval between validations, and the length of training is set with
    ``trainer.max_steps``.

    Validation differs from nanoGPT on purpose: nanoGPT estimates the loss from 20 batches at
    random offsets (a different, noisy estimate at every evaluation); here the validation text
    is cut into consecutive non-overlapping blocks, so every validation character is predicted
    exactly once and the value is deterministic and comparable across runs (the two differ by
    about 0.01-0.02: the final weights of nanoGPT's baby Shakespeare run score 1.8857 on its 20
    batches and 1.8983 on all of the validation text). As in nanoGPT, the first character of a
    block is predicted with a context of one character, the last with ``block_size``.

    ``litlab predict`` generates a continuation of each of ``prompts``, one prompt per batch.
    """

    def __init__(
        self,
        text_file: str = "tinyshakespeare/input.txt",
        data_dir: str | None = None,
        block_size: PositiveInt = 64,
        batch_size: PositiveInt = 12,
        samples_per_epoch: PositiveInt = 3000,
        val_fraction: OpenUnitInterval = 0.1,
        eval_batch_size: PositiveInt | None = None,
        prompts: list[str] | None = None,
        shuffle_seed: int | None = None,
        num_workers: NonNegativeInt = 0,
    ) -> None:
        """Args:
        text_file: The text (UTF-8); a relative path is taken inside the data root.
        data_dir: Data root; default ``$LITLAB_DATA``, else ``./data``.
        block_size: Characters of context per training example (the model's block size).
        batch_size: Training blocks per batch.
        samples_per_epoch: Training blocks per epoch (rounded down to whole batches); with
            ``trainer.max_steps``, it sets how often validation runs.
        val_fraction: Share of the text, taken from its end, that validates.
        eval_batch_size: Validation blocks per batch; default ``batch_size``.
        prompts: Texts that ``litlab predict`` continues; default one newline. Their
            characters must all occur in the text.
        shuffle_seed: Seed of the training offsets; default: the run's ``seed_everything``.
        num_workers: DataLoader worker processes (slicing a tensor needs none).
        """
        super().__init__()
        problems = [
            f"{name} must be >= {low}, got {value}"
            for name, value, low in (
                ("block_size", block_size, 1),
                ("batch_size", batch_size, 1),
                ("samples_per_epoch", samples_per_epoch, batch_size),
                ("eval_batch_size", 1 if eval_batch_size is None else eval_batch_size, 1),
                ("num_workers", num_workers, 0),
            )
            if value < low
        ]
        if not 0 < val_fraction < 1:
            problems.append(f"val_fraction must be between 0 and 1, got {val_fraction}")
        if problems:
            raise LitlabError(f"CharTextDataModule: {'; '.join(problems)}")
        self.data_root = resolve_data_dir(data_dir)
        self.text_path = Path(text_file).expanduser()
        if not self.text_path.is_absolute():
            self.text_path = self.data_root / self.text_path
        self.block_size = block_size
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.val_fraction = val_fraction
        self.eval_batch_size = eval_batch_size or batch_size
        self.prompts = ["\n"] if prompts is None else list(prompts)
        self.shuffle_seed = shuffle_seed
        self.num_workers = num_workers
        self._vocabulary: CharVocabulary | None = None
        self._tokens: torch.Tensor | None = None

    # ----- the text

    def _load(self) -> None:
        if self._tokens is not None:
            return
        if not self.text_path.is_file():
            raise LitlabError(
                f"text file not found: {self.text_path}. Point --data.data_dir or "
                f"${DATA_ENV_VAR} at the folder that holds it (Tiny Shakespeare: "
                f"<data root>/tinyshakespeare/input.txt), or give --data.text_file a path."
            )
        try:
            text = self.text_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise LitlabError(
                f"{self.text_path} is not UTF-8 text: the bytes at offset {err.start} cannot be "
                f"decoded ({err.reason}). A truncated or corrupt copy: copy or download it "
                f"again; text in another encoding: convert it to UTF-8 (iconv -t utf-8)."
            ) from err
        if not text:
            raise LitlabError(
                f"{self.text_path} is empty: copy or download it again, or give --data.text_file "
                f"another text."
            )
        num_train = int(len(text) * (1 - self.val_fraction))
        # Training needs one whole block and its targets; validation at least one target.
        if num_train <= self.block_size or len(text) - num_train < 2:
            raise LitlabError(
                f"{self.text_path} has {len(text)} characters: too short for block_size="
                f"{self.block_size} and val_fraction={self.val_fraction}. Use a longer text or "
                f"a smaller --data.block_size."
            )
        self._vocabulary = CharVocabulary.from_text(text)
        self._tokens = self._vocabulary.encode(text)
        log.info(
            "%s: %d characters, vocabulary of %d",
            self.text_path,
            len(text),
            len(self._vocabulary),
        )

    @property
    def vocabulary(self) -> CharVocabulary:
        self._load()
        return self._vocabulary

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def data_facts(self) -> DataFacts:
        """What the task and its network take from this data (see litlab.core.data_facts); the
        vocabulary is the text's characters, so this reads the text file (once)."""
        return DataFacts(
            vocab_size=self.vocab_size, block_size=self.block_size, vocabulary=self.vocabulary
        )

    def encode(self, text: str) -> torch.Tensor:
        return self.vocabulary.encode(text)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.vocabulary.decode(ids)

    @property
    def num_train_chars(self) -> int:
        self._load()
        return int(len(self._tokens) * (1 - self.val_fraction))

    @property
    def train_tokens(self) -> torch.Tensor:
        self._load()
        return self._tokens[: self.num_train_chars]

    @property
    def val_tokens(self) -> torch.Tensor:
        self._load()
        return self._tokens[self.num_train_chars :]

    # ----- Lightning hooks

    def setup(self, stage: str) -> None:
        self._load()
        if stage == "predict":
            self._encoded_prompts()

    def train_dataloader(self) -> DataLoader:
        dataset = RandomBlocks(self.train_tokens, self.block_size)
        seed = self.shuffle_seed if self.shuffle_seed is not None else run_seed()
        sampler = RandomOffsetSampler(len(dataset), self.samples_per_epoch, seed)
        # Resumable in the middle of an epoch (the offsets already trained on are skipped).
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            # Under DDP rank r of W takes every W-th offset: W ranks with batch B train on the
            # batches of one process with batch W * B.
            sampler=shard_in_order(sampler, self.trainer),
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        # Its iterators draw nothing from torch's global generator (as the training loader's).
        return ResumableDataLoader(
            ConsecutiveBlocks(self.val_tokens, self.block_size),
            batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
        )

    def predict_dataloader(self) -> DataLoader:
        # One prompt per batch: prompts differ in length.
        return DataLoader(self._encoded_prompts(), batch_size=1)

    def _encoded_prompts(self) -> list[torch.Tensor]:
        encoded = []
        for prompt in self.prompts:
            if not prompt:
                raise LitlabError(
                    "empty prompt in --data.prompts: generation needs at least one character "
                    "to start from (the default prompt is a newline)."
                )
            if unknown := self.vocabulary.unknown(prompt):
                raise LitlabError(
                    f"prompt {prompt!r} has characters that do not occur in {self.text_path}: "
                    f"{''.join(unknown)!r}. The model knows only that file's "
                    f"{self.vocab_size} characters; remove them from --data.prompts."
                )
            encoded.append(self.vocabulary.encode(prompt))
        return encoded
