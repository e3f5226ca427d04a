"""A training order that puts texts of similar length in the same batch, so that batches
padded to their longest text carry little padding (the idea of Hugging Face Trainer's
``group_by_length``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from litlab.core.number_types import NonNegativeInt, PositiveInt


class LengthGroupedSampler(Sampler[int]):
    """Random order, then sorted by length within windows of ``batch_size * window_batches``
    texts, then the batches (consecutive runs of ``batch_size``) shuffled.

    Each batch holds texts of about the same length while each epoch's batches are still a
    fresh random draw. The order comes from torch's global generator, so ``seed_everything``
    makes it reproducible. Under DDP Lightning wraps it in a distributed sampler (every rank
    takes every world-size-th index), which keeps the batches nearly length-grouped.
    """

    def __init__(
        self,
        lengths: Sequence[NonNegativeInt],
        batch_size: PositiveInt,
        window_batches: PositiveInt = 50,
    ) -> None:
        """Args:
        lengths: Length of every sample, in dataset order.
        batch_size: The loader's batch size.
        window_batches: Batches per sorting window: larger means less padding and less
            randomness in which texts share a batch.
        """
        self.lengths = torch.as_tensor(lengths)
        self.batch_size = batch_size
        self.window = batch_size * window_batches

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.lengths))
        windows = []
        for window in order.split(self.window):
            by_length = torch.argsort(self.lengths[window], descending=True, stable=True)
            windows.append(window[by_length])
        batches = list(torch.cat(windows).split(self.batch_size)) if windows else []
        # A short last batch stays last: the loader cuts batches at every batch_size indices.
        short = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        for i in torch.randperm(len(batches)).tolist():
            yield from batches[i].tolist()
        for batch in short:
            yield from batch.tolist()
