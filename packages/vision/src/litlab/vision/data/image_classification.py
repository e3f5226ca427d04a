"""The DataModule every image classification dataset shares; a dataset only declares its files,
statistics and classes (see mnist.py, fashion_mnist.py, cifar10.py)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import ClassVar, Literal, get_args

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Subset, random_split
from torchvision.datasets import VisionDataset
from torchvision.transforms import v2

from litlab.core.data_facts import DataFacts
from litlab.core.data_root import DATA_ENV_VAR, resolve_data_dir
from litlab.core.errors import LitlabError
from litlab.core.number_types import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
)
from litlab.core.ordered_sharding import shard_in_order
from litlab.core.resumable_loader import ResumableDataLoader
from litlab.core.seeding import run_seed
from litlab.vision.data.augmentation import AutoAugmentName, eval_transform, train_transform
from litlab.vision.data.batch_mixing import batch_mixing
from litlab.vision.data.file_checks import dataset_file_problem
from litlab.vision.data.image_folder import ImageFolderDataset
from litlab.vision.data.in_memory import InMemoryLoader
from litlab.vision.data.indexed_dataset import IndexedDataset
from litlab.vision.data.shuffling import EpochShuffleSampler

log = logging.getLogger(__name__)

PixelRange = Literal["standardized", "unit", "symmetric"]
# The per-channel (mean, std) that "unit" and "symmetric" put in place of the dataset's own, so
# that (x - mean) / std gives [0, 1] or [-1, 1]; litlab.generative maps images back with it.
PIXEL_RANGE_STATISTICS = {"unit": (0.0, 1.0), "symmetric": (0.5, 0.5)}


class DataOptionError(LitlabError, ValueError):
    """DataModule options that are out of range or do not go together."""


class ImageClassificationDataModule(LightningDataModule):
    """A torchvision classification dataset: fixed-seed train/val split of the official training
    set, the official test set for test and predict, per-dataset normalisation, optional
    training augmentation, MixUp/CutMix, and an in-memory mode for small datasets.

    Subclasses declare the dataset in class attributes only: ``dataset_cls`` (a torchvision
    dataset taking ``root``, ``train``, ``transform``, ``download``), ``dataset_name``,
    ``files_subdir`` and ``files`` (what must exist under the data root), ``mean``/``std``,
    ``classes``, ``image_shape`` ``(C, H, W)`` and optionally ``autoaugment_policy``.

    Training order: each epoch's permutation is drawn from ``(shuffle_seed, epoch)`` alone
    (:class:`~litlab.vision.data.shuffling.EpochShuffleSampler`), the same for the DataLoader and
    the in-memory loader. Under DDP both give rank ``r`` of ``W`` every ``W``-th image of that
    order (the DataLoader path through :func:`~litlab.core.ordered_sharding.shard_in_order`, the
    in-memory path in :class:`~litlab.vision.data.in_memory.InMemoryLoader` itself), so ``W``
    ranks with batch ``B`` train on the batches of one process with batch ``W * B``.
    """

    dataset_cls: ClassVar[type[VisionDataset]]
    dataset_name: ClassVar[str]
    files_subdir: ClassVar[str]
    files: ClassVar[tuple[str, ...]]
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]
    classes: ClassVar[tuple[str, ...]]
    image_shape: ClassVar[tuple[int, int, int]]
    autoaugment_policy: ClassVar[v2.AutoAugmentPolicy] = v2.AutoAugmentPolicy.IMAGENET

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: PositiveInt = 128,
        val_size: NonNegativeInt = 5000,
        split_seed: int = 0,
        num_workers: NonNegativeInt = 2,
        pin_memory: bool = False,
        download: bool = True,
        random_crop_padding: NonNegativeInt = 0,
        horizontal_flip: bool = False,
        auto_augment: AutoAugmentName = "none",
        random_erasing: ClosedUnitInterval = 0.0,
        mixup_alpha: NonNegativeFloat = 0.0,
        cutmix_alpha: NonNegativeFloat = 0.0,
        in_memory: bool = False,
        shuffle_seed: int | None = None,
        predict_dir: str | None = None,
        pixel_range: PixelRange = "standardized",
    ) -> None:
        """Args:
        data_dir: Data root; default ``$LITLAB_DATA``, else ``./data``.
        batch_size: Batch size of every loader.
        val_size: Images held out of the official training set for validation.
        split_seed: Seed of the train/val split (fixed, so every run validates on the same images).
        num_workers: Loader worker processes (unused with ``in_memory``).
        pin_memory: Pin batches in page-locked memory (faster copies to a GPU).
        download: Download the files when they are missing.
        random_crop_padding: Training augmentation: pad by this many zero pixels and crop back
            at a random offset (0: off; 4 is the usual CIFAR setting).
        horizontal_flip: Training augmentation: mirror images left-right with probability 0.5.
        auto_augment: Training augmentation policy from torchvision.transforms.v2: RandAugment,
            TrivialAugmentWide or AutoAugment (the dataset's policy); not with ``in_memory``.
        random_erasing: Training augmentation: probability of torchvision's RandomErasing
            (0: off); not with ``in_memory``.
        mixup_alpha: MixUp on training batches with this Beta(alpha, alpha) (0: off). Labels
            become ``(B, num_classes)`` probabilities.
        cutmix_alpha: CutMix on training batches with this Beta(alpha, alpha) (0: off). With
            MixUp on as well, each batch gets one of the two at random.
        in_memory: Keep each split as one uint8 tensor on the training device and build
            batches there (crop and flip included): for datasets that fit in GPU memory.
        shuffle_seed: Seed of the training order; default: the run's ``seed_everything``.
        predict_dir: ``litlab predict`` classifies the images in this folder (any size; they are
            converted to the dataset's colour mode and size); default: the official test set.
        pixel_range: What pixel values become: ``standardized`` by the dataset's mean and
            std (classifiers), ``unit`` [0, 1] (Bernoulli VAE decoders) or ``symmetric``
            [-1, 1] (diffusion models).
        """
        super().__init__()
        self.data_root = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.download = download
        self.random_crop_padding = random_crop_padding
        self.horizontal_flip = horizontal_flip
        self.auto_augment = auto_augment
        self.random_erasing = random_erasing
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.in_memory = in_memory
        self.shuffle_seed = shuffle_seed
        self.predict_dir = predict_dir
        self.pixel_range = pixel_range
        if pixel_range not in get_args(PixelRange):
            raise DataOptionError(
                f"pixel_range must be one of {', '.join(get_args(PixelRange))}, got {pixel_range!r}"
            )
        if pixel_range != "standardized":
            # Instance attributes over the dataset's statistics: x -> (x - mean) / std.
            channels = self.image_shape[0]
            mean, std = PIXEL_RANGE_STATISTICS[pixel_range]
            self.mean, self.std = (mean,) * channels, (std,) * channels
        self._check_options()
        self.eval_transform = eval_transform(self.mean, self.std)
        self.train_transform = (
            train_transform(
                self.mean,
                self.std,
                self.image_shape[1:],
                random_crop_padding=random_crop_padding,
                horizontal_flip=horizontal_flip,
                auto_augment=auto_augment,
                autoaugment_policy=self.autoaugment_policy,
                random_erasing=random_erasing,
            )
            if self.augments
            else self.eval_transform
        )
        self.batch_mixing = batch_mixing(mixup_alpha, cutmix_alpha, self.num_classes)
        self._memory: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _check_options(self) -> None:
        problems = [
            f"{name} must be >= {low}, got {value}"
            for name, value, low in (
                ("batch_size", self.batch_size, 1),
                ("val_size", self.val_size, 0),
                ("random_crop_padding", self.random_crop_padding, 0),
                ("random_erasing", self.random_erasing, 0),
                ("mixup_alpha", self.mixup_alpha, 0),
                ("cutmix_alpha", self.cutmix_alpha, 0),
            )
            if value < low
        ]
        if self.random_erasing > 1:
            problems.append(f"random_erasing is a probability, got {self.random_erasing}")
        if self.in_memory:
            # Those policies run per image on PIL/uint8 images; only crop and flip have a
            # batched on-device version.
            if self.auto_augment != "none":
                problems.append(
                    f"auto_augment={self.auto_augment!r} does not work with in_memory=true "
                    "(only random_crop_padding and horizontal_flip do); set auto_augment: none "
                    "or in_memory: false"
                )
            if self.random_erasing > 0:
                problems.append(
                    "random_erasing does not work with in_memory=true (only random_crop_padding "
                    "and horizontal_flip do); set random_erasing: 0 or in_memory: false"
                )
        if problems:
            raise DataOptionError(f"{type(self).__name__}: {'; '.join(problems)}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def data_facts(self) -> DataFacts:
        """What the task and its network take from this data (see litlab.core.data_facts)."""
        return DataFacts(
            num_classes=self.num_classes,
            classes=tuple(self.classes),
            image_shape=tuple(self.image_shape),
            mean=tuple(self.mean),
            std=tuple(self.std),
            pixel_range=self.pixel_range,
        )

    @property
    def augments(self) -> bool:
        """Whether training images are augmented (batch mixing aside)."""
        return bool(
            self.random_crop_padding
            or self.horizontal_flip
            or self.auto_augment != "none"
            or self.random_erasing
        )

    @property
    def files_dir(self) -> Path:
        """The folder that holds the dataset's files, in torchvision's layout."""
        return self.data_root / self.files_subdir

    def _missing_files(self) -> list[str]:
        return [name for name in self.files if not (self.files_dir / name).is_file()]

    def _missing_data_error(self, missing: list[str], reason: str) -> LitlabError:
        return LitlabError(
            f"{self.dataset_name} is not in {self.files_dir}: missing {', '.join(missing)} "
            f"({reason}). Point --data.data_dir or ${DATA_ENV_VAR} at a folder holding "
            f"{self.files_subdir}/ with the files {', '.join(self.files)}, or run once with "
            f"internet access and download on."
        )

    def _needs_dataset(self) -> bool:
        # Predicting a folder of images needs none of the dataset's files.
        stage = self.trainer.state.stage if self.trainer is not None else None
        return not (self.predict_dir and stage is not None and stage.value == "predict")

    def prepare_data(self) -> None:
        missing = self._missing_files()
        if not missing or not self._needs_dataset():
            return
        if not self.download:
            raise self._missing_data_error(missing, "download is off")
        log.info("Downloading %s to %s", self.dataset_name, self.data_root)
        try:
            for train in (True, False):
                self.dataset_cls(str(self.data_root), train=train, download=True)
        except (OSError, RuntimeError) as err:
            raise self._missing_data_error(missing, f"the download failed: {err}") from err

    def _dataset(self, train: bool, transform: v2.Transform) -> VisionDataset:
        try:
            return self.dataset_cls(str(self.data_root), train=train, transform=transform)
        except (RuntimeError, ValueError, AssertionError, EOFError, pickle.UnpicklingError) as err:
            # torchvision says "not found or corrupted" when a CIFAR file fails its checksum,
            # and fails in a reshape on a truncated MNIST file: find the file to name.
            raise self._unreadable_error(err) from err

    def _unreadable_error(self, error: Exception) -> LitlabError:
        problems = {
            path: problem
            for path in (self.files_dir / name for name in self.files)
            if (problem := dataset_file_problem(self.dataset_cls, path)) is not None
        }
        again = (
            "downloaded again" if self.download else "downloaded again with --data.download true"
        )
        if not problems:
            return LitlabError(
                f"{self.dataset_name} in {self.files_dir} could not be read: {error}. Delete "
                f"{self.files_dir} so that it is {again}, or point --data.data_dir or "
                f"${DATA_ENV_VAR} at an intact copy."
            )
        named = "; ".join(f"{path} ({problem})" for path, problem in problems.items())
        one = len(problems) == 1
        return LitlabError(
            f"{self.dataset_name} could not be read: truncated or corrupt {named}. Delete "
            f"{'it so that it is' if one else 'them so that they are'} {again}, or copy "
            f"{'an intact one' if one else 'intact ones'} there."
        )

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.predict_dir:
            self.predict_set = ImageFolderDataset(
                self.predict_dir,
                mode="L" if self.image_shape[0] == 1 else "RGB",
                size=self.image_shape[1:],
                transform=self.eval_transform,
            )
            return
        if missing := self._missing_files():
            raise self._missing_data_error(missing, "prepare_data did not fetch them")
        if stage in ("fit", "validate"):
            eval_full = self._dataset(train=True, transform=self.eval_transform)
            train_full = (
                self._dataset(train=True, transform=self.train_transform)
                if self.augments
                else eval_full
            )
            # Splitting positions, not the dataset, lets both halves use their own transform;
            # the indices are exactly random_split's on the dataset itself.
            positions = range(len(eval_full))
            if self.val_size >= len(positions):
                raise DataOptionError(
                    f"val_size={self.val_size} leaves no training images: {self.dataset_name} "
                    f"has {len(positions)} in its training set"
                )
            generator = torch.Generator().manual_seed(self.split_seed)
            train_part, val_part = random_split(
                positions, [len(positions) - self.val_size, self.val_size], generator=generator
            )
            self.train_set = Subset(train_full, train_part.indices)
            self.val_set = Subset(eval_full, val_part.indices)
            if self.in_memory:
                images, labels = self.as_tensors(eval_full)
                for split, subset in (("train", self.train_set), ("val", self.val_set)):
                    index = torch.as_tensor(subset.indices, dtype=torch.long)
                    self._memory[split] = images[index], labels[index]
        if stage in ("test", "predict"):
            self.test_set = self._dataset(train=False, transform=self.eval_transform)
            self.predict_set = IndexedDataset(self.test_set)
            # Prediction always reads through a DataLoader (predict_dataloader).
            if self.in_memory and stage == "test":
                self._memory["test"] = self.as_tensors(self.test_set)

    def as_tensors(self, dataset: VisionDataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole dataset as uint8 ``(N, C, H, W)`` images and int64 labels, read from the
        arrays torchvision keeps (``data``, ``targets``) without decoding image by image."""
        images = torch.as_tensor(dataset.data)
        channels, height, width = self.image_shape
        if tuple(images.shape[1:]) == (height, width) and channels == 1:
            images = images.unsqueeze(1)
        elif tuple(images.shape[1:]) == (height, width, channels):
            images = images.permute(0, 3, 1, 2)
        if tuple(images.shape[1:]) != self.image_shape or images.dtype != torch.uint8:
            raise NotImplementedError(
                f"{type(self).__name__}.as_tensors expects uint8 images shaped like "
                f"{self.image_shape}, got {images.dtype} {tuple(images.shape)}; override it."
            )
        labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
        return images.contiguous(), labels

    def _training_seed(self) -> int:
        return run_seed() if self.shuffle_seed is None else self.shuffle_seed

    def _memory_loader(self, split: str, train: bool = False) -> InMemoryLoader:
        trainer = self.trainer
        images, labels = self._memory[split]
        return InMemoryLoader(
            images,
            labels,
            self.batch_size,
            self.mean,
            self.std,
            # The strategy's device is the LightningModule's: cuda:<local rank> under DDP.
            device=trainer.strategy.root_device if trainer is not None else "cpu",
            shuffle=train,
            seed=self._training_seed(),
            random_crop_padding=self.random_crop_padding if train else 0,
            horizontal_flip=self.horizontal_flip and train,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def _loader(self, dataset: Dataset, train: bool = False) -> DataLoader:
        sampler = None
        if train:
            order = EpochShuffleSampler(len(dataset), self._training_seed())
            sampler = shard_in_order(order, self.trainer)
        # Resumable in the middle of an epoch; its iterators draw nothing from torch's global
        # generator, so dropout and MixUp draw the same numbers in a resumed run.
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader | InMemoryLoader:
        if self.in_memory:
            return self._memory_loader("train", train=True)
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | InMemoryLoader:
        if self.in_memory:
            return self._memory_loader("val")
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader | InMemoryLoader:
        if self.in_memory:
            return self._memory_loader("test")
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        # Always a DataLoader: prediction is one pass, not worth a copy on the device.
        return self._loader(self.predict_set)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # Training batches only: validation and test must see the real images and labels.
        if self.batch_mixing is not None and self.trainer is not None and self.trainer.training:
            images, labels = batch
            batch = self.batch_mixing(images, labels)
        return batch
