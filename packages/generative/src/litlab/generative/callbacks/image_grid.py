"""A grid of images saved as a PNG in the run folder and sent to the W&B run."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import WandbLogger
from torchvision.utils import save_image


def log_image_grid(
    trainer: Trainer,
    key: str,
    images: torch.Tensor,
    nrow: int = 8,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path | None:
    """Writes ``images`` (B, C, H, W) as one grid to ``<run folder>/images/<key>_<step>.png``
    (``/`` in ``key`` becomes ``_``) and logs that picture to every W&B logger under ``key``.

    Values are mapped from ``value_range`` to [0, 1] and clamped. Only rank zero writes; other
    ranks return None.
    """
    if not trainer.is_global_zero:
        return None
    low, high = value_range
    pixels = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key.replace('/', '_')}_{trainer.global_step:07d}.png"
    save_image(pixels, path, nrow=nrow, padding=2, pad_value=1.0)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, images=[str(path)], step=trainer.global_step)
    return path
