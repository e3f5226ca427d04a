"""The names of a model's parameters as it was built, once FSDP and activation checkpointing
have wrapped its blocks.

Both wrap a block in place and hold it as an attribute (``_fsdp_wrapped_module``,
``_checkpoint_wrapped_module``), so ``named_parameters()`` of a wrapped model show those
segments, while its state dict (and so every checkpoint) leaves them out.
"""

from __future__ import annotations

from torch import nn

WRAPPER_MODULE_NAMES = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module")


def unwrapped_name(name: str) -> str:
    """``name`` without the wrapper segments: the model's own name, as in its state dict."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_MODULE_NAMES)


def is_wrapped(module: nn.Module) -> bool:
    """Whether FSDP or activation checkpointing wrapped ``module`` or a module inside it."""
    return any(unwrapped_name(name) != name for name, _ in module.named_modules())
