"""MNIST (LeCun et al. 1998): 60,000 training and 10,000 test digits, 28x28 grey."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import datasets
from torchvision.transforms import v2

from litlab.core.data_root import DATA_ENV_VAR, resolve_data_dir
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(LightningDataModule):
    """MNIST with a fixed-seed train/val split of the official training set.

    The official test set is the test split. Files are read from ``<data_dir>/MNIST/raw``
    (torchvision's layout) and downloaded only when they are missing.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        val_size: int = 5000,
        split_seed: int = 0,
        num_workers: int = 2,
        pin_memory: bool = False,
        download: bool = True,
    ) -> None:
        """Args:
        data_dir: Data root; default ``$LITLAB_DATA``, else ``./data``.
        batch_size: Batch size of every loader.
        val_size: Images held out of the official training set for validation.
        split_seed: Seed of the train/val split (fixed, so every run validates on the same images).
        num_workers: Loader worker processes.
        pin_memory: Pin batches in page-locked memory (faster copies to a GPU).
        download: Download the files when they are missing.
        """
        super().__init__()
        self.data_root = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.download = download
        self.transform = v2.Compose(
            [
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MNIST_MEAN, MNIST_STD),
            ]
        )

    @property
    def raw_dir(self) -> Path:
        return self.data_root / "MNIST" / "raw"

    def _missing_files(self) -> list[str]:
        return [name for name in MNIST_FILES if not (self.raw_dir / name).is_file()]

    def _missing_data_error(self, missing: list[str], reason: str) -> LitlabError:
        return LitlabError(
            f"MNIST is not in {self.raw_dir}: missing {', '.join(missing)} ({reason}). Point "
            f"--data.data_dir or ${DATA_ENV_VAR} at a folder holding MNIST/raw/ with the files "
            f"{', '.join(MNIST_FILES)}, or run once with internet access and download on."
        )

    def prepare_data(self) -> None:
        missing = self._missing_files()
        if not missing:
            return
        if not self.download:
            raise self._missing_data_error(missing, "download is off")
        log.info("Downloading MNIST to %s", self.data_root)
        try:
            for train in (True, False):
                datasets.MNIST(self.data_root, train=train, download=True)
        except (OSError, RuntimeError) as err:
            raise self._missing_data_error(missing, f"the download failed: {err}") from err

    def setup(self, stage: str) -> None:
        if missing := self._missing_files():
            raise self._missing_data_error(missing, "prepare_data did not fetch them")
        if stage in ("fit", "validate"):
            full = datasets.MNIST(self.data_root, train=True, transform=self.transform)
            generator = torch.Generator().manual_seed(self.split_seed)
            self.train_set, self.val_set = random_split(
                full, [len(full) - self.val_size, self.val_size], generator=generator
            )
        if stage in ("test", "predict"):
            self.test_set = datasets.MNIST(self.data_root, train=False, transform=self.transform)

    def _loader(self, dataset: Dataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
