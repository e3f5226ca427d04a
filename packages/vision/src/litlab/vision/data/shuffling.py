"""The training order: a permutation that depends on (seed, epoch) only.

Both loaders (the DataLoader and the in-memory one) draw their order here, so for one seed they
visit the images in the same order, and a resumed run continues with the order it would have had.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from litlab.core.number_types import NonNegativeInt

# Set by Lightning's seed_everything (the CLI's `seed_everything:`) and inherited by the processes
# it launches, so every DDP rank reads the same seed without any communication.
GLOBAL_SEED_ENV_VAR = "PL_GLOBAL_SEED"


def run_seed() -> int:
    """The run's seed from ``seed_everything``; 0 when the run is not seeded (as Lightning does)."""
    return int(os.environ.get(GLOBAL_SEED_ENV_VAR, 0))


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (a hash of them): ``seed + epoch`` would make seed 1
    at epoch 0 repeat seed 0 at epoch 1, which correlates the runs of a seed sweep."""
    data = b"".join((part % 2**64).to_bytes(8, "little") for part in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


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
