"""``litlab export --format hf``: a Hugging Face network saved as a plain model folder with its
adapter merged in (``from_pretrained`` loads it without peft), checked by loading the folder
back and comparing its logits with the network's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from litlab.core.data_facts import data_facts_of
from litlab.core.errors import LitlabError
from litlab.core.export import DynamicAxis, ExportSpec, TensorSpec
from litlab.core.export.validation import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    ValidationResult,
    validate_export,
)
from litlab.nlp.adapters import is_adapted
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)

# Longest sequence the reloaded model is checked on (short: the check is about weights).
CHECK_LENGTH = 8


def export_merged(network: nn.Module, path: Path, datamodule: Any = None) -> ValidationResult:
    """Writes ``network`` (an :class:`~litlab.nlp.models.hf_causal_lm.HFCausalLM` or
    :class:`~litlab.nlp.models.hf_sequence_classifier.HFSequenceClassifier`) to the folder
    ``path`` with ``save_merged``, with the tokenizer the DataModule names (else the base
    model's, if it has one), and checks that the folder loads back to the same logits."""
    save_merged = getattr(network, "save_merged", None)
    transformers_model = getattr(network, "model", None)
    if save_merged is None or transformers_model is None:
        raise LitlabError(
            f"{type(network).__name__} is not a Hugging Face network (it has no save_merged()): "
            f"--format hf is for HFCausalLM and HFSequenceClassifier."
        )
    if is_adapted(transformers_model):
        transformers_model = transformers_model.get_base_model()
    save_merged(path, _tokenizer(transformers_model, datamodule))
    reloaded = type(transformers_model).from_pretrained(str(path)).eval()

    def run(inputs: Any) -> list[torch.Tensor]:
        with torch.no_grad():
            return [reloaded(input_ids=inputs[0]).logits]

    spec = _check_spec(network, transformers_model.config)
    label = f"Hugging Face folder {path}"
    validation = validate_export(run, spec, DEFAULT_ATOL, DEFAULT_RTOL, label)
    log.info(
        "Saved %s to %s (adapter merged); loaded back it matches within atol=%g, rtol=%g "
        "(max abs difference %.3g)",
        type(network).__name__, path, DEFAULT_ATOL, DEFAULT_RTOL, validation.max_abs_diff,
    )  # fmt: skip
    return validation


def _check_spec(network: nn.Module, config: Any) -> ExportSpec:
    """Random token ids below the vocabulary size, at most CHECK_LENGTH long."""
    positions = getattr(config, "max_position_embeddings", None) or CHECK_LENGTH
    batch, time = DynamicAxis("batch"), DynamicAxis("time", max=min(positions, CHECK_LENGTH))
    with torch.no_grad():
        probe = network.eval()(torch.zeros(1, 2, dtype=torch.int64))
    # Logits per position (causal LM) or per sequence (classifier).
    logits = (batch, time, probe.shape[-1]) if probe.dim() == 3 else (batch, probe.shape[-1])
    return ExportSpec(
        network=network,
        inputs=(TensorSpec("input_ids", (batch, time), torch.int64, high=config.vocab_size),),
        outputs=(TensorSpec("logits", logits),),
    )


def _tokenizer(model: nn.Module, datamodule: Any) -> PreTrainedTokenizerBase | None:
    name = data_facts_of(datamodule).tokenizer_name or model.config.name_or_path
    if not name:
        log.warning(
            "No tokenizer saved with the model: the data names none (a tokenizer learnt in "
            "training is in the fit's checkpoints/<name>-hf folder)."
        )
        return None
    try:
        return AutoTokenizer.from_pretrained(resolve_pretrained(name))
    except (OSError, ValueError):
        log.warning("No tokenizer found with %s: the model is saved without one.", name)
        return None
