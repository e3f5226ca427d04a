"""Class labels outside a classifier's range, caught before the loss sees them."""

from __future__ import annotations

import torch

from litlab.core.errors import LitlabError


def check_class_labels(labels: torch.Tensor, num_classes: int, stage: str, batch_idx: int) -> None:
    """Raise a :class:`~litlab.core.errors.LitlabError` naming the batch, the sample and its
    label when an integer label is outside ``0..num_classes - 1``.

    Cross-entropy would stop with an index error deep in its traceback on the CPU, and with a
    device-side assert that poisons the whole CUDA context on a GPU. Soft (floating-point)
    labels, as MixUp makes, are not class indices and are left alone.

    Args:
        labels: The batch's labels.
        num_classes: The classifier's number of classes.
        stage: ``train``, ``val`` or ``test``, for the message.
        batch_idx: The batch's index in its epoch, for the message.
    """
    if labels.is_floating_point():
        return
    bad = (labels < 0) | (labels >= num_classes)
    if not bad.any():
        return
    positions = bad.flatten().nonzero().flatten()
    first = int(positions[0])
    raise LitlabError(
        f"{stage} batch {batch_idx}: sample {first} of the batch has label "
        f"{int(labels.flatten()[first])}, outside 0..{num_classes - 1} (num_classes="
        f"{num_classes}; {len(positions)} bad label(s) in this batch). Fix the data's labels, or "
        f"set model.init_args.num_classes (and the network's) to the number of classes."
    )
