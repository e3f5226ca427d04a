"""The training order: a permutation that depends on (seed, epoch) only.

Both loaders (the DataLoader and the in-memory one) draw their order here, so for one seed they
visit the images in the same order, and a resumed run continues with the order it would have had.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from litlab.core.number_types import NonNegativeInt
from litlab.core.seeding import derive_seed


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation of ``range(num_samples)`` every epoch, drawn from ``(seed, epoch)``.

    Lightning calls ``set_epoch`` at the start of each epoch, and under DDP its sampler wrapper
    forwards the call and shards the order between ranks.
    """

    def __init__(self, num_samples: NonNegativeInt, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation().tolist())

    def __len__(self) -> int:
        return self.num_samples
