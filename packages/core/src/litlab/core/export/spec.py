"""What a task tells ``litlab export``: the network to export, the names, shapes and types of
its inputs and outputs, and what a deployer needs to feed it (normalisation, class names, a
vocabulary)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from torch import nn

from litlab.core.errors import LitlabError

# Every dynamic axis of the example the exporter traces: 2, not 1, as torch.export would
# specialise a size-1 axis to a constant.
EXAMPLE_AXIS_SIZE = 2


@dataclass(frozen=True)
class DynamicAxis:
    """An axis whose size is known only at run time: the batch, a sequence's length.

    Axes of the same name in several inputs and outputs always have the same size.
    """

    name: str
    max: int | None = None
    """The largest size the network accepts (a GPT's block size); None: any."""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a dynamic axis needs a name like 'batch', got {self.name!r}")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the exported network."""

    name: str
    shape: tuple[int | DynamicAxis, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None
    """Integer inputs: sample values are drawn from ``[0, high)`` (token ids below the
    vocabulary size); default 2."""

    def describe(self) -> dict[str, Any]:
        """The sidecar's entry: dynamic axes by name, dtype as numpy spells it."""
        shape = [dim.name if isinstance(dim, DynamicAxis) else dim for dim in self.shape]
        return {"name": self.name, "shape": shape, "dtype": str(self.dtype).removeprefix("torch.")}


@dataclass(frozen=True)
class ExportSpec:
    """The network ``litlab export`` writes, called as ``network(*inputs)`` in eval mode.

    ``metadata`` goes into the JSON sidecar as is (JSON values only): what a deployer must
    know to prepare inputs and read outputs.
    """

    network: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def dynamic_axes(self) -> dict[str, DynamicAxis]:
        """Every dynamic axis of the inputs, by name (the first declaration wins)."""
        axes: dict[str, DynamicAxis] = {}
        for tensor in self.inputs:
            for dim in tensor.shape:
                if isinstance(dim, DynamicAxis):
                    axes.setdefault(dim.name, dim)
        return axes

    def sample_inputs(
        self, sizes: dict[str, int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Random inputs with the dynamic axes at ``sizes``: standard normal floats, integers
        in ``[0, high)``."""
        tensors = []
        for tensor in self.inputs:
            shape = [sizes[d.name] if isinstance(d, DynamicAxis) else d for d in tensor.shape]
            if tensor.dtype.is_floating_point:
                tensors.append(torch.randn(shape, generator=generator).to(tensor.dtype))
            else:
                high = tensor.high or 2
                tensors.append(torch.randint(0, high, shape, generator=generator).to(tensor.dtype))
        return tuple(tensors)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """The inputs the exporter traces with."""
        sizes = {
            name: min(EXAMPLE_AXIS_SIZE, axis.max or EXAMPLE_AXIS_SIZE)
            for name, axis in self.dynamic_axes().items()
        }
        return self.sample_inputs(sizes, torch.Generator().manual_seed(0))


@runtime_checkable
class Exportable(Protocol):
    """A task that ``litlab export`` can write as ONNX or TorchScript."""

    def export_spec(self, datamodule: LightningDataModule | None) -> ExportSpec:
        """The network and its inputs; ``datamodule`` is the run's (not set up), if known."""
        ...


def export_spec_of(task: LightningModule, datamodule: LightningDataModule | None) -> ExportSpec:
    """The task's own ``export_spec``, else one built from Lightning's ``example_input_array``
    (the task's ``forward``, axis 0 of every input and output a dynamic batch axis)."""
    if isinstance(task, Exportable):
        return task.export_spec(datamodule)
    example = task.example_input_array
    if isinstance(example, torch.Tensor):
        example = (example,)
    if not (
        isinstance(example, Sequence)
        and example
        and all(isinstance(t, torch.Tensor) and t.dim() > 0 for t in example)
    ):
        found = "none" if example is None else f"a {type(example).__name__}"
        raise LitlabError(
            f"{type(task).__name__} cannot be exported: it has no export_spec(datamodule) "
            f"method and its example_input_array is {found}, not a tensor or a tuple of "
            f"tensors. Give the task an export_spec (see litlab.core.export.spec.ExportSpec) "
            f"or set self.example_input_array."
        )
    with torch.no_grad():
        outputs = task.eval()(*example)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    return ExportSpec(
        network=task,
        inputs=_batched_specs("input", example),
        outputs=_batched_specs("output", outputs),
    )


def _batched_specs(prefix: str, tensors: Sequence[torch.Tensor]) -> tuple[TensorSpec, ...]:
    batch = DynamicAxis("batch")
    return tuple(
        TensorSpec(
            name=prefix if len(tensors) == 1 else f"{prefix}_{i}",
            shape=(batch, *tensor.shape[1:]),
            dtype=tensor.dtype,
            high=None if tensor.dtype.is_floating_point else int(tensor.max()) + 1,
        )
        for i, tensor in enumerate(tensors)
    )
