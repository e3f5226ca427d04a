"""Random crop and horizontal flip as batched tensor ops, run wherever the batch lives (the GPU
for the in-memory loader), instead of one image at a time in loader workers.

Both follow torchvision's per-image semantics (``RandomCrop(padding=p)`` with zero fill,
``RandomHorizontalFlip(0.5)``), with an independent draw per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` images by ``padding`` and cut each back to ``H x W`` at its own
    random offset."""
    if padding <= 0:
        return images
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    # Two gathers (rows, then columns) cut every image at its own offset in one op each:
    # out[b, c, i, j] = padded[b, c, top[b] + i, left[b] + j].
    rows = (top[:, None] + torch.arange(height, device=device))[:, None, :, None]
    images = padded.gather(2, rows.expand(batch, channels, height, width + 2 * padding))
    cols = (left[:, None] + torch.arange(width, device=device))[:, None, None, :]
    return images.gather(3, cols.expand(batch, channels, height, width))


def random_horizontal_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each ``(B, C, H, W)`` image left-right with probability 0.5."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
