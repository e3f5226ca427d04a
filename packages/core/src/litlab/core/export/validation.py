"""Checking an exported model against the PyTorch network it came from, on random inputs
whose dynamic axes take other sizes than the traced example."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from litlab.core.errors import LitlabError
from litlab.core.export.spec import DynamicAxis, ExportSpec

log = logging.getLogger(__name__)

# The sizes of the dynamic axes in the checks: unbounded axes (the batch) take 1, 3 and 2 in
# turn; bounded ones (a GPT's sequence length) their maximum, 3 and 1. So the exported model is
# checked at the longest input it accepts and at short ones, with batches of one and more.
UNBOUNDED_SIZES = (1, 3, 2)

# How closely an exported model must match PyTorch unless the user says otherwise.
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
NUM_CHECKS = len(UNBOUNDED_SIZES)

ExportedRunner = Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor]]


@dataclass(frozen=True)
class ValidationResult:
    """How closely the exported model's outputs match PyTorch's, check by check."""

    atol: float
    rtol: float
    checks: tuple[dict[str, Any], ...]

    @property
    def max_abs_diff(self) -> float:
        return max(check["max_abs_diff"] for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": True,
            "atol": self.atol,
            "rtol": self.rtol,
            "max_abs_diff": self.max_abs_diff,
            "checks": list(self.checks),
        }


def validation_sizes(spec: ExportSpec) -> list[dict[str, int]]:
    """The dynamic axes' sizes of each check."""
    axes = spec.dynamic_axes()
    if not axes:
        return [{}]
    return [
        {name: _size(axis, check) for name, axis in axes.items()} for check in range(NUM_CHECKS)
    ]


def _size(axis: DynamicAxis, check: int) -> int:
    if axis.max is None:
        return UNBOUNDED_SIZES[check]
    return (axis.max, min(3, axis.max), 1)[check]


def validate_export(
    run: ExportedRunner, spec: ExportSpec, atol: float, rtol: float, label: str
) -> ValidationResult:
    """Runs the exported model (``run``) and ``spec.network`` on the same random inputs and
    compares every output: ``|exported - pytorch| <= atol + rtol * |pytorch|``.

    Raises a LitlabError naming the largest difference and the tolerance when an output
    differs, or when the exported model fails or gives other shapes (a dynamic axis that was
    frozen at export).
    """
    generator = torch.Generator().manual_seed(1)
    checks = []
    network = spec.network.eval()
    for sizes in validation_sizes(spec):
        inputs = spec.sample_inputs(sizes, generator)
        shapes = {t.name: list(x.shape) for t, x in zip(spec.inputs, inputs, strict=True)}
        with torch.no_grad():
            expected = network(*inputs)
        expected = (expected,) if isinstance(expected, torch.Tensor) else tuple(expected)
        try:
            actual = list(run(inputs))
        except Exception as err:
            raise LitlabError(
                f"the exported {label} fails on inputs of shape {shapes} ({_first_line(err)}): "
                f"its dynamic axes do not hold. Export with a network whose forward has no "
                f"shape-dependent Python branches."
            ) from err
        if len(actual) != len(expected):
            raise LitlabError(
                f"the exported {label} gives {len(actual)} outputs where PyTorch gives "
                f"{len(expected)}."
            )
        differences = []
        for output, want, got in zip(spec.outputs, expected, actual, strict=True):
            if tuple(got.shape) != tuple(want.shape):
                raise LitlabError(
                    f"the exported {label} gives '{output.name}' of shape {list(got.shape)} "
                    f"where PyTorch gives {list(want.shape)} (inputs {shapes})."
                )
            want, got = want.float(), got.float()
            differences.append(float((got - want).abs().max()) if want.numel() else 0.0)
            if not torch.allclose(got, want, atol=atol, rtol=rtol):
                raise LitlabError(
                    f"the exported {label} does not match PyTorch: '{output.name}' differs by "
                    f"up to {differences[-1]:.3g} (inputs {shapes}), beyond the tolerance "
                    f"atol={atol:g}, rtol={rtol:g}. Do not deploy it; if the difference is "
                    f"float rounding, raise --atol/--rtol."
                )
        checks.append({"inputs": shapes, "max_abs_diff": max(differences, default=0.0)})
        log.debug(
            "%s matches PyTorch on inputs %s: max abs difference %.3g",
            label,
            shapes,
            checks[-1]["max_abs_diff"],
        )
    return ValidationResult(atol=atol, rtol=rtol, checks=tuple(checks))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
