"""Parameter-efficient fine-tuning (LoRA, prompt tuning, ...) through peft."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from peft import PeftConfig, PeftModel, get_peft_model
from torch import nn

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
