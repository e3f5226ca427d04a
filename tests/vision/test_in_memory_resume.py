"""InMemoryLoader resumed in the middle of an epoch: the rest of the epoch's batches, cropped and
flipped as the uninterrupted loader crops and flips them."""

import torch

from litlab.vision.data.in_memory import InMemoryLoader


def make_loader() -> InMemoryLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 6, 6), dtype=torch.uint8, generator=generator)
    return InMemoryLoader(
        images,
        torch.arange(40),
        batch_size=8,
        mean=(0.5,),
        std=(0.25,),
        shuffle=True,
        seed=3,
        random_crop_padding=2,
        horizontal_flip=True,
    )


def epoch(loader: InMemoryLoader, number: int, stop: int | None = None) -> list:
    loader.sampler.set_epoch(number)  # as Lightning does when an epoch starts
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == stop:
            break
    return batches


def assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for (images_a, labels_a), (images_b, labels_b) in zip(first, second, strict=True):
        assert torch.equal(images_a, images_b)
        assert torch.equal(labels_a, labels_b)


def test_resumed_epoch_goes_on_with_the_same_augmented_batches():
    uninterrupted = epoch(make_loader(), 1)
    stopped = make_loader()
    first_part = epoch(stopped, 1, stop=2)
    state = stopped.state_dict()
    assert state == {"epoch": 1, "batches": 2}

    resumed = make_loader()
    resumed.load_state_dict(state)
    assert_same(first_part + epoch(resumed, 1), uninterrupted)
    assert resumed.state_dict()["batches"] == len(uninterrupted)


def test_state_from_the_end_of_an_epoch_or_another_epoch_leaves_the_epoch_whole():
    whole = epoch(make_loader(), 2)
    for state in ({"epoch": 2, "batches": 5}, {"epoch": 1, "batches": 2}):
        resumed = make_loader()
        resumed.load_state_dict(state)
        assert_same(epoch(resumed, 2), whole)
