"""ResumableDataLoader: a loader stopped in the middle of an epoch, saved and loaded into a new
one, gives the rest of the epoch exactly as the uninterrupted loader does."""

import pytest
import torch
from torch.utils.data import Sampler

from litlab.core.resumable_loader import ResumableDataLoader

DATA = torch.arange(40)


class SeededSampler(Sampler[int]):
    """An order drawn from (seed, epoch), with set_epoch as Lightning calls it."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=torch.Generator().manual_seed(self.epoch)))

    def __len__(self) -> int:
        return self.n


def epoch_batches(loader, epoch=None, stop=None):
    """The batches of one epoch (the first ``stop`` of them), drawing from the global generator
    between batches as training (dropout) does."""
    if epoch is not None:
        loader.sampler.set_epoch(epoch)
    batches = []
    for batch in loader:
        batches.append(batch.tolist())
        torch.rand(3)
        if len(batches) == stop:
            break
    return batches


class GlobalGeneratorSampler(Sampler[int]):
    """An order drawn from torch's global generator when its iteration starts (as
    LengthGroupedSampler's), lazily."""

    def __iter__(self):
        yield from torch.randperm(len(DATA)).tolist()

    def __len__(self) -> int:
        return len(DATA)


@pytest.mark.parametrize("kind", ["seeded_sampler", "shuffle", "global_generator"])
def test_resumed_epoch_continues_with_the_batches_of_the_uninterrupted_one(kind):
    def make():
        if kind == "shuffle":  # torch's RandomSampler: its order from the global generator
            return ResumableDataLoader(DATA, batch_size=4, shuffle=True)
        if kind == "global_generator":
            return ResumableDataLoader(DATA, batch_size=4, sampler=GlobalGeneratorSampler())
        return ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))

    epoch = 2 if kind == "seeded_sampler" else None
    torch.manual_seed(0)
    uninterrupted = epoch_batches(make(), epoch)
    rng_at_end = torch.get_rng_state()

    torch.manual_seed(0)
    stopped = make()
    first_part = epoch_batches(stopped, epoch, stop=3)
    state, rng_at_stop = stopped.state_dict(), torch.get_rng_state()
    assert state["batches"] == 3

    torch.manual_seed(123)  # a new process: another global state until it is restored
    resumed = make()
    resumed.load_state_dict(state)
    torch.set_rng_state(rng_at_stop)
    rest = epoch_batches(resumed, epoch)

    assert first_part + rest == uninterrupted
    # The random stream after the resume is the uninterrupted one's: creating the iterator
    # and drawing the order again took nothing from it.
    assert torch.equal(torch.get_rng_state(), rng_at_end)
    # Saved again later in the same epoch, the count goes on from the resume.
    assert resumed.state_dict()["batches"] == len(uninterrupted)


def test_a_state_from_the_end_of_an_epoch_leaves_the_next_one_whole():
    loader = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    epoch_batches(loader, epoch=0)
    state = loader.state_dict()
    assert state["batches"] == len(loader)

    resumed = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    resumed.load_state_dict(state)
    fresh = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    assert epoch_batches(resumed, epoch=1) == epoch_batches(fresh, epoch=1)


def test_a_state_of_another_epoch_is_not_applied():
    loader = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    epoch_batches(loader, epoch=0, stop=2)
    resumed = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    resumed.load_state_dict(loader.state_dict())
    assert len(epoch_batches(resumed, epoch=1)) == len(resumed)


def test_iterating_draws_nothing_from_the_global_generator():
    loader = ResumableDataLoader(DATA, batch_size=4, sampler=SeededSampler(len(DATA)))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    list(loader)
    assert torch.equal(torch.get_rng_state(), before)


def test_skipped_batches_are_not_loaded():
    class Recording(torch.utils.data.Dataset):
        def __init__(self):
            self.read = []

        def __len__(self):
            return 12

        def __getitem__(self, index):
            self.read.append(index)
            return index

    stopped = ResumableDataLoader(Recording(), batch_size=3)
    batches = iter(stopped)
    next(batches), next(batches)
    dataset = Recording()
    loader = ResumableDataLoader(dataset, batch_size=3)
    loader.load_state_dict(stopped.state_dict())
    assert [b.tolist() for b in loader] == [[6, 7, 8], [9, 10, 11]]
    assert dataset.read == [6, 7, 8, 9, 10, 11]


def test_shuffle_gives_the_random_sampler_lightning_replaces_under_several_processes():
    # torch's own RandomSampler: Lightning swaps it for its DistributedSampler (seeded by the
    # epoch). torchdata's RandomSampler it would wrap in a DistributedSamplerWrapper, whose
    # order comes from a generator seeded at construction and saved nowhere (a resumed FSDP
    # run drew another order: tests/integration/test_fsdp.py).
    loader = ResumableDataLoader(DATA, batch_size=4, shuffle=True)
    assert type(loader.sampler) is torch.utils.data.RandomSampler
    assert type(ResumableDataLoader(DATA, 4, True).sampler) is torch.utils.data.RandomSampler
