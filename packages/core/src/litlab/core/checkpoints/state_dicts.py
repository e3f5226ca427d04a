"""How a saved state_dict differs from a model's, in a few words a user can act on.

``load_state_dict`` raises a traceback listing every key; this lists a few names per kind of
mismatch (missing, unexpected, of another shape) and counts the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

import torch
from torch import nn

# Names listed per kind of mismatch; the rest are counted.
SHOWN_NAMES = 3


def state_dict_problems(
    saved: Mapping[str, Any], current: Mapping[str, Any], expected: Set[str] | None
) -> list[str]:
    """One line per kind of mismatch between ``saved`` and ``current``, none when they fit.

    Args:
        saved: The checkpoint's state_dict.
        current: The model's.
        expected: The names ``saved`` must hold (all of ``current`` for a strict load, the
            trainable ones for an adapter-only checkpoint); with None only shapes are compared.
            Names of ``saved`` the model lacks are reported whenever this is given.
    """
    kinds = {
        "shape": [
            f"{name} {tuple(saved[name].shape)} (model: {tuple(current[name].shape)})"
            for name in sorted(saved.keys() & current.keys())
            if isinstance(saved[name], torch.Tensor)
            and isinstance(current[name], torch.Tensor)
            # Lazy modules get their shapes at the first forward pass.
            and not nn.parameter.is_lazy(current[name])
            and saved[name].shape != current[name].shape
        ]
    }
    if expected is not None:
        kinds["missing"] = sorted(expected - saved.keys())
        kinds["unexpected"] = sorted(saved.keys() - current.keys())
    labels = {
        "missing": "missing from it",
        "unexpected": "not in the model",
        "shape": "of another shape",
    }
    return [
        f"{len(names)} tensor(s) {labels[kind]}: {', '.join(names[:SHOWN_NAMES])}"
        f"{' ...' if len(names) > SHOWN_NAMES else ''}"
        for kind in ("missing", "unexpected", "shape")
        if (names := kinds.get(kind))
    ]
