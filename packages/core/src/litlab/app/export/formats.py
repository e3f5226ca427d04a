"""The file formats ``litlab export`` writes a network in, and how each is run back for
validation: ONNX (run by onnxruntime) and TorchScript (run by ``torch.jit.load``)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from lightning.pytorch import LightningModule

from litlab.core.errors import LitlabError
from litlab.core.export.spec import DynamicAxis, ExportSpec
from litlab.core.export.validation import ExportedRunner

log = logging.getLogger(__name__)

ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")


class ExportFormat(Protocol):
    name: str
    suffix: str

    def export(self, spec: ExportSpec, path: Path) -> dict[str, Any]:
        """Writes ``spec.network`` to ``path``; returns what the sidecar should record."""
        ...

    def load(self, path: Path) -> ExportedRunner:
        """The exported model at ``path``, as a function of the input tensors."""
        ...


class OnnxFormat:
    """ONNX through ``torch.onnx.export`` (the torch.export-based exporter), dynamic axes as
    ``dynamic_shapes``; weights inside the one ``.onnx`` file."""

    name = "onnx"
    suffix = ".onnx"

    def export(self, spec: ExportSpec, path: Path) -> dict[str, Any]:
        _require_onnx()
        dims = {
            name: torch.export.Dim(name, max=axis.max) for name, axis in spec.dynamic_axes().items()
        }
        dynamic_shapes = tuple(
            {i: dims[dim.name] for i, dim in enumerate(t.shape) if isinstance(dim, DynamicAxis)}
            for t in spec.inputs
        )
        program = torch.onnx.export(
            spec.network,
            spec.example_inputs(),
            input_names=[t.name for t in spec.inputs],
            output_names=[t.name for t in spec.outputs],
            dynamic_shapes=dynamic_shapes,
            dynamo=True,
            verbose=False,
        )
        # One self-contained file: the weights of the networks exported here are far below
        # protobuf's 2 GB limit.
        if program is None:  # only the legacy exporter (dynamo=False) returns nothing
            raise LitlabError(f"torch.onnx.export gave no program for {path}")
        program.save(str(path), external_data=False)
        return {"opset": _opset(path)}

    def load(self, path: Path) -> ExportedRunner:
        _require_onnx()
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [node.name for node in session.get_inputs()]

        def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
            feeds = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
            return [torch.from_numpy(y) for y in session.run(None, feeds)]

        return run


class TorchScriptFormat:
    """TorchScript by tracing (``torch.jit.trace``): the operations the example input runs
    are recorded, shapes included only where the network computes with them."""

    name = "torchscript"
    suffix = ".pt"

    def export(self, spec: ExportSpec, path: Path) -> dict[str, Any]:
        network, example = spec.network, spec.example_inputs()
        with _quiet_torch_jit(), torch.no_grad():
            if isinstance(network, LightningModule):
                # The tracer reads every attribute, and a LightningModule's `trainer` raises
                # outside a Trainer; Lightning's own tracing hides it.
                traced = network.to_torchscript(method="trace", example_inputs=example)
            else:
                traced = torch.jit.trace(network, example)
            torch.jit.save(traced, str(path))
        log.warning(
            "TorchScript is deprecated in PyTorch (torch.jit); --format onnx is the format "
            "to deploy with in the long run."
        )
        return {}

    def load(self, path: Path) -> ExportedRunner:
        with _quiet_torch_jit():
            module = torch.jit.load(str(path), map_location="cpu")

        def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
            with torch.no_grad():
                outputs = module(*inputs)
            return [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)

        return run


@contextlib.contextmanager
def _quiet_torch_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        # Shape checks in forward() become constants of the trace; validation then runs the
        # traced module at other sizes, which is what these warnings ask for.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch.jit's deprecation (PyTorch 2.9+) is said once, in one line, by the caller.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r"`LightningModule\.to_torchscript` has been")
        yield


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (OnnxFormat(), TorchScriptFormat())}


def _require_onnx() -> None:
    for package in ONNX_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError as err:
            raise LitlabError(
                f"ONNX export needs {', '.join(ONNX_PACKAGES)}, and {package} is not "
                f"installed: install litlab-core's export extra, pip install "
                f"'litlab-core[export]' (in this repository: uv sync)."
            ) from err


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
