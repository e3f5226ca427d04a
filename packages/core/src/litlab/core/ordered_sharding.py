"""A training order shared between DDP ranks without being shuffled again, so that the number of
devices does not change which samples train together."""

from __future__ import annotations

from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from lightning.pytorch import Trainer
from torch.utils.data import Sampler

from litlab.core.lightning_internals import shards_data


def shard_in_order(sampler: Sampler[int], trainer: Trainer | None) -> Sampler[int]:
    """``sampler`` as it is on one process; under a multi-process strategy, Lightning's
    ``DistributedSamplerWrapper`` around it with ``shuffle=False``: rank ``r`` of ``W`` takes
    positions ``r, r + W, r + 2W, ...`` of the sampler's order.

    So ``W`` ranks with batch ``B`` train on exactly the batches of one process with batch
    ``W * B``, and a DDP run reproduces a single-process run with the same global batch.
    Lightning would wrap a custom sampler by itself, but with ``shuffle=True`` for training,
    which permutes the positions once more (seeded by the run seed and epoch): the global
    batches would then depend on the number of devices. It leaves a ``DistributedSampler``
    alone, and the wrapper forwards ``set_epoch`` to ``sampler``. As Lightning's, the shards are
    padded to equal length by repeating the first positions.

    Args:
        sampler: The training order of all ranks together (drawn from the seed and epoch).
        trainer: The trainer the DataModule is attached to (None: not attached, one process).
    """
    if trainer is None:
        return sampler
    kwargs = trainer.distributed_sampler_kwargs
    if not kwargs or kwargs.get("num_replicas", 1) <= 1 or not _shards(trainer):
        return sampler
    return DistributedSamplerWrapper(sampler, shuffle=False, **kwargs)


def _shards(trainer: Trainer) -> bool:
    # `Trainer(use_distributed_sampler=False)`: the user shards the data, or wants none sharded.
    return shards_data(trainer)
