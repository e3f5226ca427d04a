"""Parameter-efficient fine-tuning (LoRA, prompt tuning, ...) through peft."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from peft import PeftConfig, PeftModel, get_peft_model
from torch import nn

from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} parameters ({self.percent:.3f}%)"


def count_parameters(model: nn.Module) -> ParameterCount:
    """Trainable and total parameters, each shared tensor counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    return ParameterCount(
        trainable=sum(p.numel() for p in params if p.requires_grad),
        total=sum(p.numel() for p in params),
    )


def apply_adapter(model: nn.Module, adapter: PeftConfig | None) -> nn.Module:
    """``model`` wrapped by peft with ``adapter`` (only the adapter trains), or unchanged for
    full fine-tuning when ``adapter`` is None."""
    if adapter is None:
        return model
    wrapped = get_peft_model(model, adapter)
    log.info("%s adapter: %s", adapter.peft_type.value, count_parameters(wrapped))
    return wrapped


def is_adapted(model: nn.Module) -> bool:
    return isinstance(model, PeftModel)


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its adapter folded into the weights, a plain ``transformers``
    model that loads without peft (``model`` itself when it has no adapter). ``model`` keeps
    its separate adapter."""
    if not is_adapted(model):
        return model
    config = model.peft_config[model.active_adapter]
    if config.is_prompt_learning:
        raise LitlabError(
            f"a {config.peft_type.value} adapter adds virtual tokens, not weights: it cannot be "
            f"merged into the model. Deploy the adapter folder beside the checkpoint "
            f"(checkpoints/<name>-adapter) with its base model instead."
        )
    return copy.deepcopy(model).merge_and_unload()
