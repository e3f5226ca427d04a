"""Export a checkpoint: load the task, write its network in the chosen format, run the file
back against PyTorch, and describe it in a JSON sidecar."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from litlab.app.export.checkpoint_loading import LoadedCheckpoint, load_checkpoint
from litlab.app.export.formats import FORMATS
from litlab.core.errors import LitlabError
from litlab.core.export.spec import ExportSpec, export_spec_of
from litlab.core.export.validation import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    ValidationResult,
    validate_export,
)

log = logging.getLogger(__name__)

HF_FORMAT = "hf"
EXPORT_FORMATS = (*FORMATS, HF_FORMAT)
# float32 through another runtime: differences are rounding (1e-7 to 1e-5 on the networks here).


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path | None = None
    validation: ValidationResult | None = None


def check_export_format(export_format: str) -> None:
    if export_format not in EXPORT_FORMATS:
        raise LitlabError(
            f"unknown export format {export_format!r}: choose one of {', '.join(EXPORT_FORMATS)}."
        )


def default_output(checkpoint: Path, export_format: str) -> Path:
    """Beside the checkpoint: ``<stem>.onnx``, ``<stem>.pt``, or the folder ``<stem>-merged``."""
    if export_format == HF_FORMAT:
        return checkpoint.with_name(f"{checkpoint.stem}-merged")
    return checkpoint.with_suffix(FORMATS[export_format].suffix)


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    export_format: str,
    output: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> ExportResult:
    """Exports the network of ``checkpoint`` as ``export_format`` (onnx, torchscript, hf).

    ONNX and TorchScript files are validated (see
    :func:`~litlab.core.export.validation.validate_export`) and get a sidecar
    ``<file>.json``; a file that does not match PyTorch raises a LitlabError and gets no
    sidecar. ``hf`` calls the task's ``export_hf(path, datamodule)``.
    """
    check_export_format(export_format)
    checkpoint = Path(checkpoint)
    path = Path(output) if output is not None else default_output(checkpoint, export_format)
    if path.resolve() == checkpoint.resolve():
        raise LitlabError(f"--output {path} is the checkpoint itself: give another file name.")
    loaded = load_checkpoint(checkpoint, config_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    if export_format == HF_FORMAT:
        return _export_hf(loaded, path)

    spec = export_spec_of(loaded.task, loaded.datamodule)
    spec.network.eval()
    fmt = FORMATS[export_format]
    sidecar = path.with_name(path.name + ".json")
    # A sidecar vouches for its file: an earlier one must not outlive a failed validation.
    sidecar.unlink(missing_ok=True)
    details = fmt.export(spec, path)
    label = f"{export_format} model {path}"
    validation = validate_export(fmt.load(path), spec, atol, rtol, label)
    description = _describe(spec, export_format, path, checkpoint, loaded, details, validation)
    sidecar.write_text(json.dumps(description, indent=2) + "\n")
    log.info(
        "Exported %s to %s (and %s): it matches PyTorch within atol=%g, rtol=%g "
        "(max abs difference %.3g)",
        checkpoint, path, sidecar.name, atol, rtol, validation.max_abs_diff,
    )  # fmt: skip
    return ExportResult(path=path, sidecar=sidecar, validation=validation)


def _export_hf(loaded: LoadedCheckpoint, path: Path) -> ExportResult:
    export_hf = getattr(loaded.task, "export_hf", None)
    if not callable(export_hf):
        raise LitlabError(
            f"{type(loaded.task).__name__} cannot be exported with --format hf: it has no "
            f"export_hf(path, datamodule) method. That format is for Hugging Face networks "
            f"(litlab.nlp's CausalLanguageModel and TextClassifier with HFCausalLM or "
            f"HFSequenceClassifier); use --format onnx or torchscript for others."
        )
    export_hf(path, loaded.datamodule)
    return ExportResult(path=path)


def _describe(
    spec: ExportSpec,
    export_format: str,
    path: Path,
    checkpoint: Path,
    loaded: LoadedCheckpoint,
    details: dict[str, Any],
    validation: ValidationResult,
) -> dict[str, Any]:
    return {
        "format": export_format,
        "file": path.name,
        "checkpoint": str(checkpoint),
        "config": str(loaded.config_file) if loaded.config_file else None,
        "task": _class_name(loaded.task),
        "network": _class_name(spec.network),
        "inputs": [t.describe() for t in spec.inputs],
        "outputs": [t.describe() for t in spec.outputs],
        "dynamic_axes": {name: {"max": axis.max} for name, axis in spec.dynamic_axes().items()},
        **details,
        "torch_version": torch.__version__,
        **spec.metadata,
        "validation": validation.to_json(),
    }


def _class_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
