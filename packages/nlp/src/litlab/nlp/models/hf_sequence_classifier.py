"""A pretrained Hugging Face transformer with a classification head, fine-tuned fully or
through a peft adapter (LoRA, prompt tuning, ...)."""

from __future__ import annotations

import copy
import logging
import os

import torch
from peft import PeftConfig, TaskType
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt, RightOpenUnitInterval
from litlab.nlp.adapters import apply_adapter, merged_copy
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)


class HFSequenceClassifier(nn.Module):
    """``AutoModelForSequenceClassification`` as a plain module: token ids (B, T) and their
    attention mask -> class logits (B, num_labels).

    The head is new (randomly initialised) unless the checkpoint already has one for
    ``num_labels`` classes. Without ``adapter`` every weight trains (full fine-tuning). With
    one, peft freezes the pretrained weights and only the adapter trains, plus the
    classification head: the adapter's ``task_type`` is set to ``SEQ_CLS`` when left unset,
    which makes peft train the head (``modules_to_save``). In YAML::

        adapter:
          class_path: peft.LoraConfig
          init_args: {r: 8, lora_alpha: 16, lora_dropout: 0.1, target_modules: [query, value]}
    """

    def __init__(
        self,
        name_or_path: str,
        num_labels: PositiveInt = 2,
        adapter: PeftConfig | None = None,
        classifier_dropout: RightOpenUnitInterval | None = None,
    ) -> None:
        """Args:
        name_or_path: Hub name or local folder of the pretrained model (found offline as
            :func:`~litlab.nlp.pretrained.resolve_pretrained` describes).
        num_labels: Number of classes.
        adapter: A peft config (``peft.LoraConfig``, ``peft.PromptTuningConfig``, ...); None
            fine-tunes every weight.
        classifier_dropout: Dropout before the head; default: the model config's.
        """
        super().__init__()
        options = {} if classifier_dropout is None else {"classifier_dropout": classifier_dropout}
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                resolve_pretrained(name_or_path), num_labels=num_labels, **options
            )
        except OSError as err:
            raise LitlabError(
                f"cannot load the pretrained model {name_or_path!r}: {err}. Give a hub name "
                f"(online, or already in the Hugging Face cache) or a local folder."
            ) from err
        if model.config.pad_token_id is None:
            # Decoder-only models (GPT-2, Llama) classify from the last non-padding token and
            # need to know the padding id; the data module pads with EOS for them.
            model.config.pad_token_id = model.config.eos_token_id
        # from_pretrained returns the model in eval mode; Lightning keeps each module's mode,
        # so training would run without dropout. Modules start in train mode, as any nn.Module.
        model.train()
        self.model = apply_adapter(model, _for_sequence_classification(adapter))

    @property
    def vocab_size(self) -> int:
        """Rows of the input embedding table (token ids must be below it)."""
        return self.model.get_input_embeddings().num_embeddings

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def save_merged(
        self, path: str | os.PathLike[str], tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        """Writes the model with its adapter (and trained head) merged in, as a plain Hugging
        Face folder that ``AutoModelForSequenceClassification`` loads without peft."""
        merged_copy(self.model).save_pretrained(str(path))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(path))


def _for_sequence_classification(adapter: PeftConfig | None) -> PeftConfig | None:
    """A copy of ``adapter`` with ``task_type`` SEQ_CLS and its tokenizer found locally (a copy:
    peft fills in a prompt-learning config's model sizes in place, and the config given is the
    run's hyperparameter)."""
    if adapter is None:
        return None
    adapter = copy.deepcopy(adapter)
    if getattr(adapter, "tokenizer_name_or_path", None):
        # Prompt tuning initialised from a text loads the tokenizer itself: offline too.
        adapter.tokenizer_name_or_path = resolve_pretrained(adapter.tokenizer_name_or_path)
    if adapter.task_type is None:
        adapter.task_type = TaskType.SEQ_CLS
    elif adapter.task_type != TaskType.SEQ_CLS:
        raise LitlabError(
            f"the adapter's task_type is {adapter.task_type}, but a sequence classifier needs "
            f"SEQ_CLS (which also trains the classification head). Set task_type: SEQ_CLS or "
            f"leave it out."
        )
    return adapter
