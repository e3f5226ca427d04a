"""A DataLoader that a run stopped in the middle of an epoch resumes exactly where it stopped."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import RandomSampler
from torchdata.stateful_dataloader import StatefulDataLoader


class ResumableDataLoader(StatefulDataLoader):
    """torchdata's ``StatefulDataLoader``, whose place in the epoch Lightning saves in the
    checkpoint (the fit loop's ``combined_loader`` state) and hands back on a resume; the next
    iteration then skips the batches the stopped run had already trained on, as indices (none
    of them is loaded), so the rest of the epoch is the batches an uninterrupted run would have
    read, in its order. With ``num_workers > 0`` torchdata restores the workers' place too.

    That needs an epoch order that can be drawn again:

    - a sampler seeded by ``(seed, epoch)`` with ``set_epoch``, which Lightning calls (litlab's
      ``EpochShuffleSampler`` and ``RandomOffsetSampler``, ``DistributedSampler``);
    - one that takes its order from torch's global generator when its iteration starts
      (``shuffle=True``, which gives torch's ``RandomSampler``, not torchdata's, and
      ``LengthGroupedSampler``): the global generator's state at the start of the epoch is
      saved too, and the order drawn again from it (the global generator is left as it is).

    What this adds to ``StatefulDataLoader``:

    - the iteration starts at the first batch asked for, not when the iterator is created:
      Lightning creates it before ``set_epoch`` (and a sampler draws the epoch's order when its
      iteration starts), and ``ResumeState`` can still hand over a saved state when Lightning
      did not (Lightning issue #20550);
    - the state names the epoch it was saved in: a state of another epoch, or one saved at the
      end of its epoch, leaves the epoch whole;
    - creating an iterator draws nothing from torch's global generator (DataLoader draws its
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
        **kwargs: DataLoader's (and StatefulDataLoader's) keyword arguments.
        """
        arguments = inspect.signature(StatefulDataLoader.__init__).bind(None, *args, **kwargs)
        given = arguments.arguments
        if (
            given.get("shuffle")
            and given.get("sampler") is None
            and given.get("batch_sampler") is None
        ):
            # torch's RandomSampler, not torchdata's: it draws its order from the global
            # generator when its iteration starts, so the epoch's order is drawn again from the
            # saved epoch_start_rng. Under several processes Lightning replaces it with its
            # DistributedSampler (seeded by the epoch). torchdata's keeps a generator seeded
            # once, at construction, and Lightning wraps it (DistributedSamplerWrapper), where
            # its state is saved nowhere: a resumed run then drew another order.
            given["sampler"] = RandomSampler(given["dataset"], generator=given.get("generator"))
            given["shuffle"] = False
            args, kwargs = arguments.args[1:], arguments.kwargs
        with warnings.catch_warnings():
            # torchdata 0.11 calls torch.set_vital, which newer torch deprecates; not ours to fix.
            warnings.filterwarnings("ignore", "'set_vital' is deprecated", UserWarning)
            super().__init__(*args, **kwargs)
        if getattr(self, "generator", None) is None:  # set by DataLoader's __init__
            self.generator = torch.Generator().manual_seed(torch.initial_seed())
        self._pending: dict[str, Any] | None = None
        # torch's global random state when this epoch's iteration started.
        self._epoch_start_rng: torch.Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        if self._pending is not None:  # loaded, not yet applied
            return self._pending
        if self._iterator is None:  # not iterated yet (StatefulDataLoader would start now)
            return {"epoch": self._epoch(), "batches": 0, "loader": {}}
        loader = super().state_dict()
        return {
            "epoch": self._epoch(),
            "batches": _yielded(loader),
            "epoch_start_rng": self._epoch_start_rng,
            "loader": loader,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied when the next iteration starts, once Lightning has set the epoch.
        self._pending = dict(state_dict)

    def _epoch(self) -> int | None:
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            epoch = getattr(sampler, "epoch", None)
            if isinstance(epoch, int):
                return epoch
        return None

    def __iter__(self) -> Iterator[Any]:
        return _LazyIterator(self)

    def _start(self) -> Iterator[Any]:
        pending, self._pending = self._pending, None
        if (
            pending is None
            or pending.get("epoch") != self._epoch()
            or not 0 < pending.get("batches", 0) < len(self)
        ):
            if pending is not None:
                super().load_state_dict({})
            self._epoch_start_rng = torch.get_rng_state()
            return super().__iter__()
        # Creating the iterator skips the trained batches, drawing the order again: a sampler
        # that draws it from the global generator draws it from the state it saw then.
        super().load_state_dict(pending["loader"])
        self._epoch_start_rng = pending.get("epoch_start_rng")
        with torch.random.fork_rng(devices=[]):
            if self._epoch_start_rng is not None:
                torch.set_rng_state(self._epoch_start_rng)
            return super().__iter__()


class _LazyIterator:
    """The loader's iterator, created at the first ``next``."""

    def __init__(self, loader: ResumableDataLoader) -> None:
        self.loader = loader
        self.iterator: Iterator[Any] | None = None

    def __iter__(self) -> _LazyIterator:
        return self

    def __next__(self) -> Any:
        if self.iterator is None:
            self.iterator = self.loader._start()
        return next(self.iterator)

    def __len__(self) -> int:
        return len(self.loader)


def _yielded(state: dict[str, Any]) -> int:
    """The batches a StatefulDataLoader state has handed out in its epoch."""
    if "_snapshot" in state:  # worker processes
        return state["_snapshot"]["_snapshot_step"] + state.get("_steps_since_snapshot", 0)
    return state["_num_yielded"]
