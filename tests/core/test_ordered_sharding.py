"""shard_in_order: under DDP rank r of W takes positions r, r + W, ... of the sampler's order, so
W ranks with batch B see the batches of one process with batch W * B; Lightning leaves it be."""

from types import SimpleNamespace

import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from litlab.core.ordered_sharding import shard_in_order


class SeededOrder(Sampler[int]):
    """A permutation of range(n) drawn from the epoch (as litlab's training samplers are)."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(1000 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def ranks_of(world_size: int) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(distributed_sampler_kwargs={"num_replicas": world_size, "rank": rank})
        for rank in range(world_size)
    ]


def test_one_process_keeps_the_sampler():
    order = SeededOrder(10)
    assert shard_in_order(order, None) is order
    assert shard_in_order(order, Trainer(accelerator="cpu", devices=1, logger=False)) is order


def test_each_rank_takes_every_world_size_th_position_of_the_epoch_order():
    order = SeededOrder(12)
    shards = [shard_in_order(order, trainer) for trainer in ranks_of(3)]
    for epoch in (0, 1):
        for shard in shards:
            shard.set_epoch(epoch)  # what Lightning calls; it reaches the wrapped sampler
        full = list(order)
        assert [list(shard) for shard in shards] == [full[r::3] for r in range(3)]
    assert list(SeededOrder(12)) != full  # epoch 1's order is not epoch 0's


def test_global_batches_are_the_one_process_batches():
    order = SeededOrder(16)
    dataset = torch.arange(16)
    per_rank = [
        list(DataLoader(dataset, batch_size=2, sampler=shard_in_order(order, trainer)))
        for trainer in ranks_of(2)
    ]
    alone = list(DataLoader(dataset, batch_size=4, sampler=order))
    for step, batch in enumerate(alone):
        assert sorted(torch.cat([per_rank[0][step], per_rank[1][step]]).tolist()) == sorted(
            batch.tolist()
        )


def test_shards_are_padded_to_equal_length_as_lightnings():
    shards = [list(shard_in_order(SeededOrder(5), trainer)) for trainer in ranks_of(2)]
    assert [len(shard) for shard in shards] == [3, 3]
    assert set(shards[0]) | set(shards[1]) == set(range(5))


def test_lightning_leaves_the_sharded_sampler_alone():
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    sharded = shard_in_order(SeededOrder(8), trainer)
    assert isinstance(sharded, DistributedSampler)
    assert (sharded.num_replicas, sharded.rank, sharded.shuffle) == (2, 0, False)
    loader = DataLoader(torch.arange(8), sampler=sharded)
    assert not trainer._data_connector._requires_distributed_sampler(loader)


def test_use_distributed_sampler_false_means_no_sharding():
    trainer = Trainer(
        accelerator="cpu", devices=2, strategy="ddp", logger=False, use_distributed_sampler=False
    )
    order = SeededOrder(8)
    assert shard_in_order(order, trainer) is order
