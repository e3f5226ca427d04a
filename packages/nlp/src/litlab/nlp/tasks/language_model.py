"""Autoregressive language modelling: next-token cross-entropy, bits per character, sampling."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningDataModule
from torch import nn
from torchmetrics import SumMetric

from litlab.core.errors import LitlabError
from litlab.core.export import DynamicAxis, ExportSpec, TensorSpec
from litlab.core.hparams import module_args_to_ignore
from litlab.core.number_types import (
    LeftOpenUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
)
from litlab.core.seeding import derive_seed, run_seed
from litlab.core.task import Task
from litlab.nlp.callbacks.text_writer import TextSampleWriter
from litlab.nlp.data.char_text import IGNORE_INDEX, CharVocabulary
from litlab.nlp.models.sampling import check_sampling_options

Batch = tuple[torch.Tensor, torch.Tensor]
GENERATION_ARGS = ("max_new_tokens", "temperature", "top_k", "top_p")


class LanguageModel(Task):
    """Trains ``network`` (token ids (B, T) -> logits (B, T, V)) to predict the next token.

    Logs ``train/loss``, ``val/loss`` (mean cross-entropy per predicted token, in nats) and
    ``val/bpc`` (bits per character: ``val/loss / ln 2``, for character-level data); the best
    checkpoint has the lowest ``val/loss``. Targets equal to -1 are not scored (padding).

    ``litlab predict`` continues each prompt of the datamodule with ``max_new_tokens`` tokens
    sampled by the model's ``generate`` (as :class:`~litlab.nlp.models.gpt.GPT` has), and writes
    the texts to ``samples.txt`` in the run folder. Every prompt gets its own random generator,
    seeded from the run's ``seed_everything`` and the prompt's position, so a sample does not
    change with the other prompts and the same seed gives the same samples. The generation
    settings are not saved in checkpoints: ``litlab predict`` takes them from the config and
    the command line (``--model.temperature 0.8``).

    The data's facts give the ``vocabulary`` (``len``, ``decode`` and ``chars``, the token
    strings in id order), as :class:`~litlab.nlp.data.char_text.CharTextDataModule` does. The
    vocabulary is saved in checkpoints, and a checkpoint used with another vocabulary is
    refused.
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        network: nn.Module,
        weight_decay: NonNegativeFloat = 0.1,
        lr_scheduler_interval: Literal["epoch", "step"] = "step",
        max_new_tokens: NonNegativeInt = 500,
        temperature: NonNegativeFloat = 1.0,
        top_k: PositiveInt | None = None,
        top_p: LeftOpenUnitInterval | None = None,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The network (a ``class_path`` in YAML) mapping token ids to next-token logits.
        weight_decay: Weight decay of the matrices and embeddings (not of norms and biases).
        lr_scheduler_interval: Step the scheduler every ``"step"`` or every ``"epoch"``.
        max_new_tokens: Tokens generated per prompt by ``litlab predict``.
        temperature: Sampling temperature: < 1 sharper, > 1 flatter, 0 always the most likely.
        top_k: Sample only among the ``top_k`` most likely tokens (None: all).
        top_p: Sample only from the smallest set of most likely tokens holding probability
            ``top_p`` (nucleus sampling; None: all).
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(
            weight_decay=weight_decay, lr_scheduler_interval=lr_scheduler_interval, **kwargs
        )
        try:
            check_sampling_options(temperature, top_k, top_p)
        except ValueError as err:
            option = str(err).split()[0]  # the messages start with the option's name
            raise LitlabError(f"{err}. Set --model.{option} (model.init_args.{option}).") from err
        if max_new_tokens < 0:
            raise LitlabError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        # Generation settings stay out of the checkpoint: with --ckpt_path, LightningCLI replaces
        # the config's model arguments with the checkpoint's, which would silently undo
        # `litlab predict --model.temperature 0.8`.
        self.save_hyperparameters(
            logger=False, ignore=[*module_args_to_ignore("network"), *GENERATION_ARGS]
        )
        self.network = network
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.vocabulary: Any = None
        self._checkpoint_chars: str | None = None
        # Summed token losses and scored tokens over the whole validation set.
        self.val_nll = SumMetric()
        self.val_tokens = SumMetric()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.network(idx)

    def export_spec(self, datamodule: LightningDataModule | None) -> ExportSpec:
        """``litlab export``: the network, from int64 token ids ``(batch, time)`` to next-token
        logits ``(batch, time, vocab_size)``, with ``time`` up to the model's ``block_size``.
        The sidecar gets the vocabulary (the characters in id order) saved in the checkpoint.
        """
        vocab_size = getattr(self.network, "vocab_size", None)
        if not isinstance(vocab_size, int):
            raise LitlabError(
                f"{type(self).__name__} cannot be exported: its network "
                f"{type(self.network).__name__} has no vocab_size attribute (the number of token "
                f"ids), which export needs for the logits' shape, as GPT has."
            )
        block_size = getattr(self.network, "block_size", None)
        batch, time = DynamicAxis("batch"), DynamicAxis("time", max=block_size)
        metadata: dict[str, Any] = {"block_size": block_size}
        if (chars := getattr(self.vocabulary, "chars", None)) is not None:
            metadata["vocabulary"] = chars
        return ExportSpec(
            network=self.network,
            inputs=(TensorSpec("token_ids", (batch, time), torch.int64, high=vocab_size),),
            outputs=(TensorSpec("logits", (batch, time, vocab_size)),),
            metadata=metadata,
        )

    def configure_callbacks(self) -> list[Callback]:
        return [TextSampleWriter()]

    # ----- the vocabulary

    def setup(self, stage: str) -> None:
        facts = self.data_facts
        data_block_size = facts.block_size
        model_block_size = getattr(self.network, "block_size", None)
        if data_block_size and model_block_size and data_block_size > model_block_size:
            raise LitlabError(
                f"the data has blocks of {data_block_size} tokens but the model's block_size is "
                f"{model_block_size}. Set data.init_args.block_size to at most "
                f"{model_block_size}, or model.init_args.network.init_args.block_size to "
                f"{data_block_size}."
            )
        vocabulary = facts.vocabulary
        if vocabulary is None:
            return
        model_vocab_size = getattr(self.network, "vocab_size", None)
        if model_vocab_size is not None and model_vocab_size < len(vocabulary):
            raise LitlabError(
                f"the model has vocab_size={model_vocab_size} but the data has "
                f"{len(vocabulary)} distinct tokens. Set "
                f"model.init_args.network.init_args.vocab_size: {len(vocabulary)}."
            )
        self.vocabulary = vocabulary

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        chars = getattr(self.vocabulary, "chars", None)
        if chars is not None:
            checkpoint["vocabulary"] = chars

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("vocabulary")
        current = getattr(self.vocabulary, "chars", None)
        if saved is not None and current is None:
            # Loaded outside a trainer with a datamodule: the checkpoint alone decodes samples.
            self.vocabulary = CharVocabulary(saved)
        elif saved is not None and current is not None and saved != current:
            raise LitlabError(
                f"the checkpoint was trained on a vocabulary of {len(saved)} tokens that differs "
                f"from the data's ({len(current)} tokens): its token ids would decode to other "
                f"characters. Use the text file the model was trained on (--data.text_file)."
            )

    # ----- training and validation

    def _loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over the scored targets, and how many there are."""
        idx, targets = batch
        logits = self(idx)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )
        return loss, (targets != IGNORE_INDEX).sum()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, scored = self._loss(batch)
        self.val_nll.update(loss * scored)
        self.val_tokens.update(scored)
        return loss

    def on_validation_epoch_end(self) -> None:
        # compute() sums over the DDP ranks too, so the value is the mean over every validation
        # token even when the ranks scored different numbers of them (a padded last block); a
        # mean of the ranks' means would not be.
        loss = self.val_nll.compute() / self.val_tokens.compute().clamp(min=1)
        self.val_nll.reset()
        self.val_tokens.reset()
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/bpc", loss / math.log(2), prog_bar=True)

    # ----- generation

    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> dict[str, list[str]]:
        """Continue the prompts ``batch`` (B, T) and return ``prompt`` and ``text`` (prompt and
        continuation), decoded."""
        if not hasattr(self.network, "generate"):
            raise LitlabError(
                f"{type(self.network).__name__} has no generate(); litlab predict needs a model "
                "that samples text, such as litlab.nlp.models.gpt.GPT."
            )
        if self.vocabulary is None:
            raise LitlabError(
                "no vocabulary to decode the samples: litlab predict needs a datamodule with a "
                "vocabulary, such as litlab.nlp.data.char_text.CharTextDataModule."
            )
        generator = torch.Generator(device=batch.device)
        generator.manual_seed(derive_seed(run_seed(), batch_idx))
        generated = self.network.generate(
            batch,
            self.max_new_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            generator=generator,
        )
        return {
            "prompt": [self.vocabulary.decode(ids) for ids in batch],
            "text": [self.vocabulary.decode(ids) for ids in generated],
        }
