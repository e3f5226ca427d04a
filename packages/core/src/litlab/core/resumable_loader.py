"""A DataLoader that a run stopped in the middle of an epoch resumes exactly where it stopped."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """A DataLoader whose place in the epoch is saved in the checkpoint.

    Lightning saves ``state_dict()`` with the training loop and, when a run resumes in the middle
    of an epoch, hands it back through ``load_state_dict``. The next iteration then skips the
    batches the stopped run had already trained on, as indices (none of them is loaded), so the
    rest of the epoch is the batches an uninterrupted run would have read, in its order.

    That needs an epoch order that can be drawn again:

    - a sampler seeded by ``(seed, epoch)`` with ``set_epoch``, which Lightning calls (litlab's
      ``EpochShuffleSampler`` and ``RandomOffsetSampler``, ``DistributedSampler``); or
    - one that takes its order from torch's global generator (or from ``generator``) when its
      iteration starts (``shuffle=True``'s RandomSampler, ``LengthGroupedSampler``): the
      generators' state at the start of the epoch is saved too, and the order drawn again
      from it.

    Creating an iterator draws nothing from torch's global generator (DataLoader draws its
    workers' base seed from it unless given ``generator``; here it is a generator of the
    loader's own), so dropout, MixUp and the like get the same random numbers whether or not
    a run was resumed, and whatever ``num_workers`` and ``persistent_workers`` are.

    Not restored: the random state inside worker processes. With ``num_workers > 0`` the
    random per-sample augmentation of the rest of an interrupted epoch differs from an
    uninterrupted run's (the order does not).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Args:
        *args: DataLoader's arguments.
        **kwargs: DataLoader's keyword arguments.
        """
        super().__init__(*args, **kwargs)
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(torch.initial_seed())
        # Batches handed out in this epoch, and the generators' state when the epoch started.
        self._batches = 0
        self._epoch_start_state: dict[str, torch.Tensor] | None = None
        # From load_state_dict, used by the next iteration; then what that iteration skips.
        self._resume: dict[str, Any] | None = None
        self._skip = 0
        self._replay_state: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self._epoch(),
            "batches": self._batches,
            "epoch_start_state": self._epoch_start_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict)

    def _epoch(self) -> int | None:
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if isinstance(getattr(sampler, "epoch", None), int):
                return sampler.epoch
        return None

    @property
    def _index_sampler(self) -> Iterable:
        return _ResumingIndices(super()._index_sampler, self)

    def __iter__(self) -> Iterator[Any]:
        # A generator: none of this runs before the first batch is asked for, which Lightning
        # does after set_epoch (it creates the iterator before).
        resume, self._resume = self._resume, None
        self._skip, self._replay_state = 0, None
        # A state saved at the end of an epoch (or in another epoch) leaves this one whole.
        if resume and resume["epoch"] == self._epoch() and 0 < resume["batches"] < len(self):
            self._skip, self._replay_state = resume["batches"], resume["epoch_start_state"]
        self._batches = self._skip
        for batch in super().__iter__():
            self._batches += 1
            yield batch


class _ResumingIndices:
    """The loader's batch sampler (or sampler), skipping what the loader says to skip."""

    def __init__(self, indices: Iterable, loader: ResumableDataLoader) -> None:
        self.indices = indices
        self.loader = loader

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[Any]:
        loader = self.loader
        replay, skip = loader._replay_state, loader._skip
        loader._replay_state, loader._skip = None, 0
        if not skip:
            loader._epoch_start_state = {
                "torch": torch.get_rng_state(),
                "generator": loader.generator.get_state(),
            }
            yield from self.indices
            return
        # Samplers that draw their order when their iteration starts draw it again from the
        # state they saw then; the global generator is left as it is.
        if replay is not None:
            loader.generator.set_state(replay["generator"])
        with torch.random.fork_rng(devices=[]):
            if replay is not None:
                torch.set_rng_state(replay["torch"])
            indices = iter(self.indices)
            for _ in itertools.islice(indices, skip):
                pass
        loader._epoch_start_state = replay
        yield from indices
