"""Parameter names once activation checkpointing (or FSDP) has wrapped a model's blocks."""

from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
)

from litlab.core.module_wrappers import is_wrapped, unwrapped_name


def blocks() -> nn.Sequential:
    return nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Linear(3, 1))


def test_wrapped_names_come_back_as_the_state_dict_names():
    model = blocks()
    built = [name for name, _ in model.named_parameters()]
    apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, nn.Sequential))
    wrapped = [name for name, _ in model.named_parameters()]
    assert wrapped != built  # the wrapper shows in the names ...
    assert [unwrapped_name(name) for name in wrapped] == built
    assert list(model.state_dict()) == built  # ... not in the state dict
    assert unwrapped_name("a._fsdp_wrapped_module._checkpoint_wrapped_module.b.weight") == (
        "a.b.weight"
    )


def test_is_wrapped_tells_a_wrapped_model_from_a_plain_one():
    model = blocks()
    assert not is_wrapped(model)
    apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, nn.Sequential))
    assert is_wrapped(model)
