"""Causal language modelling: next-token cross-entropy, validation perplexity, generation, and
checkpoints that hold only the weights that train (an adapter's, under LoRA)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningDataModule
from torch import nn
from torchmetrics import SumMetric

from litlab.core.callbacks import CSVPredictionWriter
from litlab.core.checkpoints.state_dicts import state_dict_problems
from litlab.core.errors import LitlabError
from litlab.core.hparams import module_args_to_ignore
from litlab.core.module_wrappers import unwrapped_name
from litlab.core.number_types import (
    ClosedUnitInterval,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from litlab.core.task import Task
from litlab.nlp.adapters import count_parameters
from litlab.nlp.callbacks.hf_export import HFExport
from litlab.nlp.data.causal_lm import IGNORE_INDEX
from litlab.nlp.merged_export import export_merged

log = logging.getLogger(__name__)

# Marks a checkpoint that holds only the trainable tensors (of an adapted model).
TRAINABLE_ONLY_KEY = "litlab_trainable_only"


class CausalLanguageModel(Task):
    """Trains ``network`` (token ids -> next-token logits, e.g.
    :class:`~litlab.nlp.models.hf_causal_lm.HFCausalLM`) to predict each next token.

    Logs ``train/loss`` and, per validation run, ``val/loss`` (mean cross-entropy per
    predicted token over the whole validation set, in nats) and ``val/ppl`` (its exponential);
    the best checkpoint has the lowest ``val/loss``. Batches are dicts with ``input_ids``,
    ``labels`` (positions labelled -100 are not predicted) and optionally ``attention_mask``.

    When part of the model is frozen (an adapter trains, the base does not), checkpoints hold
    only the trainable tensors: the frozen rest comes from the base model when the checkpoint is
    loaded, which checks that every trainable tensor is there with the right shape. Beside each
    checkpoint an :class:`~litlab.nlp.callbacks.hf_export.HFExport` writes the Hugging Face
    folder (the adapter alone, or the whole model). ``litlab predict`` continues the data's
    prompts with Hugging Face ``generate`` and writes them to a CSV file.
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        network: nn.Module,
        lr: PositiveFloat = 3e-4,
        lr_scheduler_interval: Literal["epoch", "step"] = "step",
        max_new_tokens: PositiveInt = 64,
        do_sample: bool = True,
        temperature: PositiveFloat = 1.0,
        top_k: NonNegativeInt | None = 50,
        top_p: ClosedUnitInterval | None = None,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The language model (a ``class_path`` in YAML): ``network(input_ids,
            attention_mask)`` gives logits ``(B, T, vocab)``; ``generate`` is needed to predict.
        lr: Peak learning rate.
        lr_scheduler_interval: Step the scheduler every ``"step"`` or every ``"epoch"``.
        max_new_tokens: Tokens generated per prompt by ``litlab predict``.
        do_sample: Sample the continuation (with the settings below); off: greedy decoding.
        temperature: Sampling temperature (below 1: more conservative).
        top_k: Sample among the k most likely tokens only (None: all).
        top_p: Nucleus sampling: among the most likely tokens whose probabilities sum to p.
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(lr=lr, lr_scheduler_interval=lr_scheduler_interval, **kwargs)
        self.save_hyperparameters(logger=False, ignore=module_args_to_ignore("network"))
        self.network = network
        self.generation_options = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
        }
        # The sum of token losses and the number of tokens, over the whole validation set: a
        # mean of per-batch means would weigh a short last batch (or padded rows) wrongly.
        self.val_nll = SumMetric()
        self.val_tokens = SumMetric()
        # The frozen base is not in the checkpoint, so loading cannot be strict;
        # on_load_checkpoint does the checking instead.
        self.strict_loading = not self.saves_trainable_only

    # ----- what trains

    @property
    def saves_trainable_only(self) -> bool:
        """Whether part of the model is frozen, so that checkpoints hold the trainable part."""
        return any(not p.requires_grad for p in self.parameters())

    def trainable_state_names(self) -> set[str]:
        """The state-dict keys of the trainable parameters."""
        # By name, not by tensor: under FSDP the state dict holds gathered copies. Tied names
        # are all kept, as the state dict has them.
        return {
            unwrapped_name(name)
            for name, parameter in self.named_parameters(remove_duplicate=False)
            if parameter.requires_grad
        }

    def required_state_names(self) -> set[str]:
        """The tensors a checkpoint of this task must hold: the trainable ones (litlab's
        ``--ckpt_path`` check reads this)."""
        return self.trainable_state_names()

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def setup(self, stage: str) -> None:
        if stage == "fit":
            # Here, before a sharding strategy wraps the model: then each rank holds a part.
            log.info("Training %s", count_parameters(self))
        self._check_data_fits_model()

    def _check_data_fits_model(self) -> None:
        """Token ids or positions beyond the model's embeddings fail deep inside the forward
        pass with a bare IndexError; say which setting is wrong instead."""
        config = getattr(self.network, "config", None)
        vocab_size = getattr(config, "vocab_size", None)
        tokenizer = self._tokenizer(required=False)
        if tokenizer is not None and vocab_size is not None and len(tokenizer) > vocab_size:
            raise LitlabError(
                f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                f"{vocab_size}: token ids would fall outside the embedding. Give the model a "
                f"vocab_size of at least {len(tokenizer)} (or the tokenizer it was trained with)."
            )
        positions = getattr(config, "max_position_embeddings", None)
        block_size = self.data_facts.block_size
        if positions is not None and block_size is not None and block_size > positions:
            raise LitlabError(
                f"data.block_size={block_size} is longer than the model's context of "
                f"{positions} positions. Lower data.block_size to at most {positions}."
            )

    # ----- training and validation

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.network(input_ids, attention_mask)

    def token_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed next-token cross-entropy of the batch and the number of tokens predicted."""
        logits = self(batch["input_ids"], batch.get("attention_mask"))
        # Position t predicts token t + 1; labels of -100 (padding) are skipped.
        targets = batch["labels"][:, 1:]
        nll = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            targets.flatten(),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        return nll, (targets != IGNORE_INDEX).sum()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        nll, tokens = self.token_losses(batch)
        loss = nll / tokens.clamp(min=1)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        nll, tokens = self.token_losses(batch)
        self.val_nll.update(nll)
        self.val_tokens.update(tokens)

    def on_validation_epoch_end(self) -> None:
        # compute() sums over ranks as well.
        nll, tokens = self.val_nll.compute(), self.val_tokens.compute()
        self.val_nll.reset()
        self.val_tokens.reset()
        loss = nll / tokens.clamp(min=1)
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/ppl", loss.exp(), prog_bar=True)
        if not self.trainer.sanity_checking:
            log.info(
                "Step %d: val/loss %.4f, val/ppl %.2f (%d tokens)",
                self.global_step, loss.item(), math.exp(loss.item()), int(tokens.item()),
            )  # fmt: skip

    # ----- generation

    def export_hf(self, path: Path, datamodule: LightningDataModule | None) -> None:
        """``litlab export --format hf``: the network as a plain Hugging Face folder, adapter
        merged in, checked by loading it back (see :func:`litlab.nlp.merged_export.export_merged`).
        """
        export_merged(self.network, path, datamodule)

    def configure_callbacks(self) -> list[Callback]:
        callbacks: list[Callback] = [CSVPredictionWriter()]
        # An HFExport the config sets up (e.g. with a publish folder) is kept: one returned
        # here would replace it.
        if not any(isinstance(c, HFExport) for c in self.trainer.callbacks):
            callbacks.append(HFExport())
        return callbacks

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list[str]]:
        """Batches hold left-padded ``input_ids``/``attention_mask`` and the ``prompt`` texts."""
        tokenizer = self._tokenizer(required=True)
        input_ids = batch["input_ids"]
        output = self.generate(input_ids, batch.get("attention_mask"))
        continuations = tokenizer.batch_decode(
            output[:, input_ids.shape[1] :], skip_special_tokens=True
        )
        return {"prompt": list(batch["prompt"]), "generation": continuations}

    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **options: Any
    ) -> torch.Tensor:
        """Prompt and generated token ids, with the task's generation settings unless
        ``options`` override them."""
        if not hasattr(self.network, "generate"):
            raise LitlabError(
                f"{type(self.network).__name__} has no generate(): use a model such as "
                f"litlab.nlp.models.hf_causal_lm.HFCausalLM to generate text."
            )
        settings = {**self.generation_options, **options}
        if not settings["do_sample"]:
            settings = {
                k: v for k, v in settings.items() if k not in ("temperature", "top_k", "top_p")
            }
        tokenizer = self._tokenizer(required=False)
        if tokenizer is not None:
            settings.setdefault("eos_token_id", tokenizer.eos_token_id)
            pad = tokenizer.pad_token_id
            settings.setdefault("pad_token_id", tokenizer.eos_token_id if pad is None else pad)
        return self.network.generate(input_ids, attention_mask=attention_mask, **settings)

    def _tokenizer(self, required: bool) -> Any:
        tokenizer = self.data_facts.tokenizer
        if tokenizer is None and required:
            raise LitlabError(
                "generating text needs a tokenizer: use a DataModule with a tokenizer, such as "
                "litlab.nlp.data.causal_lm.CausalLMDataModule."
            )
        return tokenizer

    # ----- checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if not self.saves_trainable_only:
            return
        keep = self.trainable_state_names()
        checkpoint["state_dict"] = {
            name: tensor for name, tensor in checkpoint["state_dict"].items() if name in keep
        }
        checkpoint[TRAINABLE_ONLY_KEY] = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "state_dict" not in checkpoint:
            # FSDP loads (and takes out) the weights before this hook; litlab's --ckpt_path
            # check has compared them with required_state_names() before the run.
            return
        saved = checkpoint["state_dict"]
        current = self.state_dict()
        source = self._checkpoint_name()
        partial = self.saves_trainable_only
        if checkpoint.get(TRAINABLE_ONLY_KEY) and not partial:
            raise LitlabError(
                f"{source} holds only the trainable weights of an adapted model (e.g. LoRA), "
                f"but this model has no adapter. Configure the adapter the run used "
                f"(model.init_args.network.init_args.adapter), or load its exported adapter folder."
            )
        expected = self.trainable_state_names() if partial else set(current)
        problems = state_dict_problems(saved, current, expected)
        if problems:
            raise LitlabError(
                f"{source} does not match this model ({'; '.join(problems)}). Load it into "
                f"the model and adapter it was trained with (same base, target_modules and r)."
            )

    def _checkpoint_name(self) -> str:
        trainer = self.attached_trainer
        path = trainer.ckpt_path if trainer is not None else None
        return f"the checkpoint {path}" if path else "the checkpoint"
