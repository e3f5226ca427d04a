"""Write the images that ``predict_step`` samples as PNG files and one grid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from PIL import Image
from torchvision.utils import save_image

from litlab.core.callbacks import FilePredictionWriter
from litlab.core.number_types import NonNegativeInt, PositiveInt

log = logging.getLogger(__name__)


class SampleWriter(FilePredictionWriter):
    """Writes each image of what ``predict_step`` returns (``images``: uint8 (B, C, H, W);
    ``index``: (B,) sample numbers) to ``<output>/<index>.png`` (``00000.png``, ...), and the
    first ``grid_size`` of them as one picture, ``grid.png`` beside that folder.

    The folder holds the samples only, so it can go straight to a tool that reads a folder of
    images (an FID script, say). Under several processes every rank writes its own samples
    (each rank samples its own share of the indices); rank zero writes the grid from its own.
    """

    default_output = "samples"
    output_per_rank = False

    def __init__(
        self, output: str | None = None, grid_size: NonNegativeInt = 64, nrow: PositiveInt = 8
    ) -> None:
        """Args:
        output: Folder for the samples; default ``samples/`` in the run folder.
        grid_size: Images in the grid (the lowest sample numbers).
        nrow: Images per row of the grid.
        """
        super().__init__(output)
        self.grid_size = grid_size
        self.nrow = nrow
        self._grid: list[torch.Tensor] = []
        self._written = 0

    @property
    def folder(self) -> Path | None:
        """The folder written by the last prediction run."""
        return self.path

    @property
    def grid_path(self) -> Path | None:
        return self.path.parent / "grid.png" if self.path is not None else None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "predict":
            self._grid = []
            self._written = 0

    def write_batch(self, prediction: Any) -> None:
        images, indices = prediction["images"], prediction["index"]
        self.path.mkdir(parents=True, exist_ok=True)
        # (B, H, W, C) for PIL; one channel becomes a greyscale (H, W) image.
        pixels = images.permute(0, 2, 3, 1).numpy()
        for image, index in zip(pixels, indices.tolist(), strict=True):
            picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            picture.save(self.path / f"{index:05d}.png")
        self._written += len(images)
        missing = self.grid_size - sum(len(part) for part in self._grid)
        if missing > 0:
            self._grid.append(images[:missing])

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._written:
            log.info("%d samples written to %s", self._written, self.path)
        if trainer.is_global_zero and self._grid:
            grid = torch.cat(self._grid).float() / 255
            save_image(grid, self.grid_path, nrow=self.nrow, padding=2, pad_value=1.0)
            log.info("Grid of %d samples written to %s", len(grid), self.grid_path)
        self._grid = []
