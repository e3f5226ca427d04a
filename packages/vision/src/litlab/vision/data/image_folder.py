"""The images of a folder, for prediction: no labels, each named by its file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFolderDataset(Dataset):
    """Every image file under ``folder`` (recursively, sorted), converted to the dataset's
    colour mode and size, as ``(image, relative path)`` pairs."""

    def __init__(
        self,
        folder: str | Path,
        mode: str,
        size: tuple[PositiveInt, PositiveInt],
        transform: Callable[[Any], Any],
    ) -> None:
        """Args:
        folder: Folder of image files.
        mode: PIL colour mode the model expects ("L" grey, "RGB" colour).
        size: (height, width) the model expects; other sizes are resized.
        transform: The dataset's evaluation transform (to tensor, normalise).
        """
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise LitlabError(f"predict folder {self.folder} is not a directory")
        self.paths = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise LitlabError(
                f"no images in {self.folder} (looked for {', '.join(IMAGE_SUFFIXES)} files)"
            )
        self.mode = mode
        self.size = size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, str]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = image.convert(self.mode)
        except (UnidentifiedImageError, OSError) as err:
            raise LitlabError(f"cannot read image {path}: {err}") from err
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return self.transform(image), str(path.relative_to(self.folder))
