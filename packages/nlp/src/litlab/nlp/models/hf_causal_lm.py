"""Any Hugging Face causal language model as a plain ``nn.Module``, optionally with a peft
adapter (LoRA, ...): pretrained or built from a config, saved whole or as the adapter alone."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import torch
from peft import PeftConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from litlab.core.errors import LitlabError
from litlab.core.module_wrappers import is_wrapped
from litlab.nlp.adapters import apply_adapter, count_parameters, is_adapted, merged_copy
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)

ADAPTER_CONFIG_FILE = "adapter_config.json"


class HFCausalLM(nn.Module):
    """A ``transformers`` causal LM (``AutoModelForCausalLM``): ``forward`` gives next-token
    logits ``(B, T, vocab)``.

    The network comes from ``pretrained`` (a hub name or a ``save_pretrained`` folder) or, for
    pre-training from scratch, from ``config`` (``model_type`` and the sizes, as in a
    ``config.json``). ``adapter`` wraps it with peft so that only the adapter trains;
    ``adapter_path`` loads a saved adapter instead.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        config: dict[str, Any] | None = None,
        adapter: PeftConfig | None = None,
        adapter_path: str | None = None,
        trainable_adapter: bool = True,
        gradient_checkpointing: bool = False,
    ) -> None:
        """Args:
        pretrained: Model name or folder (local folder first, then an offline ``gt_*``
            package, then the hub).
        config: Instead of ``pretrained``: a new model with random weights from this config,
            e.g. ``{model_type: gpt2, vocab_size: 4096, n_layer: 4, n_head: 4, n_embd: 192}``.
        adapter: A peft config (``class_path: peft.LoraConfig``) to train instead of the
            model's own weights; None: full fine-tuning.
        adapter_path: Instead of ``adapter``: an adapter folder saved earlier (by
            ``save_pretrained`` or the checkpoint export), loaded onto the model.
        trainable_adapter: Whether an adapter loaded from ``adapter_path`` keeps training.
        gradient_checkpointing: Recompute activations in the backward pass (less memory).
        """
        super().__init__()
        if (pretrained is None) == (config is None):
            raise LitlabError(
                "HFCausalLM needs exactly one of pretrained (a model name or folder) and "
                "config (a model_type and sizes, for a model trained from scratch)."
            )
        if adapter is not None and adapter_path is not None:
            raise LitlabError(
                "HFCausalLM got both adapter (a new one) and adapter_path (a saved one): keep one."
            )
        self.model: PreTrainedModel | PeftModel = (
            _from_config(config) if config is not None else _from_pretrained(pretrained)
        )
        # from_pretrained returns the model in eval mode; an nn.Module starts in train mode, and
        # Lightning keeps the modes it finds, so dropout would silently stay off in training.
        self.model.train()
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        if adapter_path is not None:
            self.load_adapter(adapter_path, trainable=trainable_adapter)
        else:
            self.model = apply_adapter(self.model, adapter)

    @property
    def is_adapted(self) -> bool:
        return is_adapted(self.model)

    @property
    def base_model(self) -> PreTrainedModel:
        """The transformers model under the adapter (with the adapter layers in it)."""
        return self.model.get_base_model() if self.is_adapted else self.model

    @property
    def config(self) -> Any:
        return self.base_model.config

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Hugging Face ``generate``: prompt and continuation token ids ``(B, T + new)``."""
        return self.model.generate(input_ids=input_ids, **kwargs)

    # ----- saving and loading

    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        tokenizer: PreTrainedTokenizerBase | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Writes what this model adds to its base: with an adapter, the adapter alone
        (``adapter_config.json`` and ``adapter_model.safetensors``, peft's layout); without,
        the whole model as a plain Hugging Face folder, with ``tokenizer`` if given.

        ``state_dict`` (this module's keys; for an adapter its tensors are enough) is written
        instead of the live weights: under FSDP those are shards, and reading them whole is a
        collective that every rank must join, while a checkpoint's are already gathered.
        """
        inner = None
        if state_dict is not None:
            inner = {
                name.removeprefix("model."): tensor
                for name, tensor in state_dict.items()
                if name.startswith("model.")
            }
        saver = self.model
        if self.is_adapted and inner is not None and is_wrapped(self.model):
            saver = self._unwrapped_adapter_twin()
        saver.save_pretrained(str(path), state_dict=inner)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(path))

    def _unwrapped_adapter_twin(self) -> PeftModel:
        """This model's base and adapter rebuilt on the meta device: the same structure, with
        no weights and no memory.

        peft finds an adapter's tensors by the names of its layers, and the names inside FSDP
        units and activation-checkpointing wrappers are not the state dict's. The twin's are.
        """
        config = copy.deepcopy(self.model.peft_config[self.model.active_adapter])
        with torch.device("meta"):
            return get_peft_model(AutoModelForCausalLM.from_config(self.config), config)

    def save_merged(
        self, path: str | os.PathLike[str], tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        """Writes the model with its adapter merged in, as a plain Hugging Face model folder
        that loads without peft. This model keeps its separate adapter."""
        merged_copy(self.model).save_pretrained(str(path))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(path))

    def load_adapter(self, path: str | os.PathLike[str], trainable: bool = False) -> None:
        """Loads a saved adapter folder onto the base model."""
        if self.is_adapted:
            raise LitlabError(
                f"cannot load the adapter {path}: this model already has one. Build the model "
                f"without adapter (or merge_adapter() first) to load another."
            )
        if not (Path(path) / ADAPTER_CONFIG_FILE).is_file():
            raise LitlabError(
                f"{path} is not an adapter folder (no {ADAPTER_CONFIG_FILE}). Give the folder "
                f"written by save_pretrained or the checkpoint export (checkpoints/*-adapter)."
            )
        self.model = PeftModel.from_pretrained(self.model, str(path), is_trainable=trainable)
        log.info("Adapter loaded from %s: %s", path, count_parameters(self.model))

    def merge_adapter(self) -> None:
        """Folds the adapter into the base weights for good (faster inference, no peft)."""
        if not self.is_adapted:
            raise LitlabError("merge_adapter(): this model has no adapter to merge.")
        self.model = self.model.merge_and_unload()


def _from_config(config: dict[str, Any]) -> PreTrainedModel:
    options = dict(config)
    model_type = options.pop("model_type", None)
    if model_type is None:
        raise LitlabError(
            "HFCausalLM config needs a model_type (e.g. gpt2, llama) and the sizes to build."
        )
    try:
        hf_config = AutoConfig.for_model(model_type, **options)
    except ValueError as err:
        raise LitlabError(f"HFCausalLM config: {err}") from err
    model = AutoModelForCausalLM.from_config(hf_config)
    log.info("New %s model from config: %s", model_type, count_parameters(model))
    return model


def _from_pretrained(name: str) -> PreTrainedModel:
    location = name
    try:
        location = resolve_pretrained(name)
        return AutoModelForCausalLM.from_pretrained(location)
    except OSError as err:
        raise LitlabError(
            f"cannot load the causal LM '{name}' ({location}): {err}. Give a folder written by "
            f"save_pretrained, or a hub name when online."
        ) from err
