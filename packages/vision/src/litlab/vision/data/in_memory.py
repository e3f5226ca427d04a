"""A loader that keeps a whole image split on the training device and builds batches there.

For small datasets (MNIST, CIFAR-10) a DataLoader spends far longer decoding, augmenting and
collating single images than the GPU spends on the batch. The fastest CIFAR-10 trainers (Keller
Jordan's airbench, hlb-cifar10) keep the uint8 images on the GPU once and index, crop, flip and
normalise whole batches there; this loader does the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import SequentialSampler
from torchvision.transforms.v2 import functional as TF

from litlab.core.number_types import NonNegativeInt, PositiveFloat, PositiveInt
from litlab.core.seeding import derive_seed
from litlab.vision.data.device_augmentation import random_crop, random_horizontal_flip
from litlab.vision.data.shuffling import EpochShuffleSampler

# Keeps the augmentation's random stream apart from the shuffle's, which shares (seed, epoch).
_AUGMENT_STREAM = 1


class InMemoryLoader:
    """Batches ``(images, labels)`` from uint8 ``(N, C, H, W)`` images held on ``device``.

    The batches are float32 normalised images and int64 labels, already on ``device``.

    - Order: with ``shuffle`` the order of each epoch is :class:`EpochShuffleSampler`'s for
      ``seed`` (``sampler.set_epoch``, which Lightning calls), the same one the DataLoader path
      uses, so without augmentation both give the same batches; without it, index order.
    - Augmentation: random crop (``random_crop_padding``) and horizontal flip, drawn per image
      from a generator seeded by (seed, epoch, rank).
    - DDP: rank ``rank`` of ``world_size`` takes every ``world_size``-th image of the epoch's
      order. Like ``DistributedSampler``, the order is first padded by repeating its first
      images so that every rank gets as many batches as the others (a rank with fewer batches
      would leave the others waiting in a collective); the shards are disjoint apart from those
      few repeats.
    - The last batch is smaller when the shard does not divide evenly, unless ``drop_last``.
    - Resuming: Lightning saves ``state_dict()`` (the epoch and the batches handed out) in the
      checkpoint; after ``load_state_dict`` the interrupted epoch goes on with its next batch,
      augmented as it would have been (the skipped batches' random draws are made again).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: PositiveInt,
        mean: Sequence[float],
        std: Sequence[PositiveFloat],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        random_crop_padding: NonNegativeInt = 0,
        horizontal_flip: bool = False,
        rank: NonNegativeInt = 0,
        world_size: PositiveInt = 1,
        drop_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
            )
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.device = torch.device(device)
        # Copied to the device once here; every batch afterwards is an index into it.
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.mean, self.std = list(mean), list(std)
        self.seed = seed
        self.random_crop_padding = random_crop_padding
        self.horizontal_flip = horizontal_flip
        self.rank, self.world_size = rank, world_size
        self.drop_last = drop_last
        # Lightning looks for ``sampler`` (to call set_epoch) and ``batch_sampler`` by name.
        num_images = len(self.images)
        self.sampler: EpochShuffleSampler | SequentialSampler = (
            EpochShuffleSampler(num_images, seed)
            if shuffle
            else SequentialSampler(range(num_images))
        )
        self.batch_sampler = None
        self._batches = 0  # handed out in this epoch
        self._resume: dict[str, int] | None = None

    @property
    def shard_size(self) -> int:
        """Images this rank sees per epoch."""
        return math.ceil(len(self.images) / self.world_size)

    def __len__(self) -> int:
        if self.drop_last:
            return self.shard_size // self.batch_size
        return math.ceil(self.shard_size / self.batch_size)

    def _epoch(self) -> int:
        return getattr(self.sampler, "epoch", 0)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch(), "batches": self._batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._resume = dict(state_dict)

    def _order(self) -> torch.Tensor:
        if isinstance(self.sampler, EpochShuffleSampler):
            order = self.sampler.permutation()
        else:
            order = torch.arange(len(self.images))
        if self.world_size > 1:
            total = self.shard_size * self.world_size
            order = order.repeat(math.ceil(total / len(order)))[:total]
            order = order[self.rank :: self.world_size]
        return order.to(self.device)

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = random_crop(images, self.random_crop_padding, generator)
        if self.horizontal_flip:
            images = random_horizontal_flip(images, generator)
        return images

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        resume, self._resume = self._resume, None
        # A state saved at the end of an epoch (or in another epoch) leaves this one whole.
        skip = 0
        if resume is not None and resume["epoch"] == self._epoch():
            skip = resume["batches"] if resume["batches"] < len(self) else 0
        order = self._order()
        generator = torch.Generator(device=self.device).manual_seed(
            derive_seed(self.seed, self._epoch(), _AUGMENT_STREAM, self.rank)
        )
        self._batches = 0
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self._augment(self.images[index], generator)
            self._batches += 1
            if self._batches <= skip:  # trained on before the resume; its draws are made
                continue
            # The same functionals as the per-image pipeline, so the floats match bit for bit.
            images = TF.normalize(
                TF.to_dtype(images, torch.float32, scale=True), self.mean, self.std
            )
            yield images, self.labels[index]
