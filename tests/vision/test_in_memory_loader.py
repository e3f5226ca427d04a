"""The in-memory loader: the same batches as the DataLoader path for one seed, its length, DDP
shards and on-device augmentation."""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from fake_datasets import accept_fake_cifar10, write_fake_cifar10, write_fake_fashion_mnist

from litlab.vision.data.cifar10 import CIFAR10DataModule
from litlab.vision.data.fashion_mnist import FashionMNISTDataModule
from litlab.vision.data.in_memory import InMemoryLoader
from litlab.vision.data.mnist import MNISTDataModule

N_TRAIN, VAL_SIZE, BATCH = 600, 100, 64  # 500 training images: 7 full batches and one of 52
# Lightning's CombinedLoader on torch 2.15 (not this code): remove once Lightning adapts.
LIGHTNING_PYTREE_WARNING = "ignore:.*treespec, LeafSpec.* is deprecated:FutureWarning"


@pytest.fixture(params=["fashion_mnist", "cifar10"])
def make_datamodule(request, tmp_path, monkeypatch):
    """Builds a set-up DataModule of the parametrised kind over fake files."""
    if request.param == "fashion_mnist":
        write_fake_fashion_mnist(tmp_path, n_train=N_TRAIN, n_test=50)
        cls = FashionMNISTDataModule
    else:
        accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, N_TRAIN // 5, 50))
        cls = CIFAR10DataModule

    def make(**kwargs):
        kwargs = {"num_workers": 0, "val_size": VAL_SIZE, "batch_size": BATCH, **kwargs}
        dm = cls(data_dir=str(tmp_path), **kwargs)
        dm.setup("fit")
        return dm

    return make


def _epoch(loader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # what Lightning does at the start of each epoch
    return list(loader)


def _assert_same_batches(first, second) -> None:
    assert len(first) == len(second)
    for (images_a, labels_a), (images_b, labels_b) in zip(first, second, strict=True):
        torch.testing.assert_close(images_a, images_b)
        assert torch.equal(labels_a, labels_b)


def test_same_batches_as_the_dataloader_for_a_seed(make_datamodule):
    standard = make_datamodule(shuffle_seed=3).train_dataloader()
    in_memory = make_datamodule(shuffle_seed=3, in_memory=True).train_dataloader()
    assert isinstance(in_memory, InMemoryLoader)
    assert len(in_memory) == len(standard) == 8
    epochs = []
    for epoch in (0, 1):
        expected, got = _epoch(standard, epoch), _epoch(in_memory, epoch)
        _assert_same_batches(expected, got)
        assert [len(labels) for _, labels in got] == [BATCH] * 7 + [52]  # drop_last=False
        epochs.append(torch.cat([labels for _, labels in got]))
    assert not torch.equal(epochs[0], epochs[1])  # a new order each epoch
    assert sorted(epochs[0].tolist()) == sorted(epochs[1].tolist())


def test_validation_batches_match_too(make_datamodule):
    standard = make_datamodule().val_dataloader()
    in_memory = make_datamodule(in_memory=True).val_dataloader()
    _assert_same_batches(list(standard), list(in_memory))


def test_order_follows_the_run_seed(make_datamodule, monkeypatch):
    orders = []
    for seed in ("5", "5", "6"):
        monkeypatch.setenv("PL_GLOBAL_SEED", seed)  # what seed_everything sets
        loader = make_datamodule(in_memory=True).train_dataloader()
        orders.append(torch.cat([labels for _, labels in _epoch(loader, 0)]))
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], orders[2])


def test_on_device_augmentation(make_datamodule):
    plain = make_datamodule(shuffle_seed=0, in_memory=True).train_dataloader()
    augmented = make_datamodule(
        shuffle_seed=0, in_memory=True, random_crop_padding=4, horizontal_flip=True
    ).train_dataloader()
    (plain_images, plain_labels), *_ = _epoch(plain, 0)
    (images, labels), *_ = _epoch(augmented, 0)
    assert images.shape == plain_images.shape
    assert images.dtype == torch.float32
    assert torch.equal(labels, plain_labels)  # augmentation does not change the order
    changed = (images != plain_images).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.8
    torch.testing.assert_close(_epoch(augmented, 0)[0][0], images)  # fixed by (seed, epoch)
    assert not torch.equal(_epoch(augmented, 1)[0][0], images)


def _loader(num_images: int, **kwargs) -> InMemoryLoader:
    images = torch.arange(num_images, dtype=torch.uint8).view(num_images, 1, 1, 1)
    return InMemoryLoader(images, torch.arange(num_images), mean=(0.0,), std=(1.0,), **kwargs)


def test_length_and_last_batch():
    loader = _loader(10, batch_size=3)
    assert len(loader) == 4
    assert [len(labels) for _, labels in loader] == [3, 3, 3, 1]
    assert torch.cat([labels for _, labels in loader]).tolist() == list(range(10))
    dropped = _loader(10, batch_size=3, drop_last=True)
    assert len(dropped) == 3
    assert len(list(dropped)) == 3


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ddp_ranks_get_disjoint_equal_shards(world_size):
    shards = []
    for rank in range(world_size):
        loader = _loader(10, batch_size=2, shuffle=True, seed=1, rank=rank, world_size=world_size)
        loader.sampler.set_epoch(2)
        batches = list(loader)
        assert len(batches) == len(loader)
        shards.append(torch.cat([labels for _, labels in batches]).tolist())
    size = -(-10 // world_size)
    assert all(len(shard) == size for shard in shards)  # every rank steps equally often
    everything = [index for shard in shards for index in shard]
    assert set(everything) == set(range(10))
    # Only the padding that evens out the shards repeats images, as DistributedSampler's does.
    assert len(everything) - len(set(everything)) == size * world_size - 10


class RecordBatches(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.batches: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.batches.append((self.current_epoch, images.cpu(), labels.cpu()))
        return self.layer(images.flatten(1).mean(dim=1, keepdim=True)).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(dm, epochs: int = 2) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    module = RecordBatches()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, dm)
    return module.batches


@pytest.mark.filterwarnings(LIGHTNING_PYTREE_WARNING)
@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
def test_trainer_sees_the_same_batches_on_both_paths(make_datamodule):
    standard = _fit(make_datamodule(shuffle_seed=9))
    in_memory = _fit(make_datamodule(shuffle_seed=9, in_memory=True))
    assert len(standard) == len(in_memory) == 16
    _assert_same_batches([b[1:] for b in standard], [b[1:] for b in in_memory])
    # Lightning called set_epoch: the second epoch has its own order.
    first, second = (torch.cat([b[2] for b in in_memory if b[0] == e]) for e in (0, 1))
    assert not torch.equal(first, second)


def test_real_mnist_first_batches_match(data_root):
    kwargs = {"data_dir": str(data_root), "num_workers": 0, "batch_size": 256, "shuffle_seed": 0}
    standard, in_memory = MNISTDataModule(**kwargs), MNISTDataModule(in_memory=True, **kwargs)
    for dm in (standard, in_memory):
        dm.setup("fit")
    pairs = zip(standard.train_dataloader(), in_memory.train_dataloader(), strict=False)
    for _, (expected, got) in zip(range(3), pairs, strict=False):
        _assert_same_batches([expected], [got])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_are_built_on_the_device():
    images = torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 10, (100,))
    common = {"batch_size": 32, "mean": (0.5,) * 3, "std": (0.25,) * 3, "shuffle": True}
    on_cpu = InMemoryLoader(images, labels, **common)
    on_gpu = InMemoryLoader(images, labels, device="cuda", **common)
    for (cpu_images, cpu_labels), (gpu_images, gpu_labels) in zip(on_cpu, on_gpu, strict=True):
        assert gpu_images.is_cuda
        assert gpu_labels.is_cuda
        torch.testing.assert_close(gpu_images.cpu(), cpu_images)
        assert torch.equal(gpu_labels.cpu(), cpu_labels)
    augmented = InMemoryLoader(
        images, labels, device="cuda", random_crop_padding=2, horizontal_flip=True, **common
    )
    batch, _ = next(iter(augmented))
    assert batch.shape == (32, 3, 8, 8)
    assert batch.is_cuda


@pytest.mark.parametrize("rank", [0, 1])
def test_ddp_ranks_get_the_same_batches_on_both_paths(make_datamodule, rank):
    # The DataLoader path is sharded by litlab.core.ordered_sharding (not re-shuffled by
    # Lightning's wrapper), so each rank's batches are its in-memory batches.
    trainer = SimpleNamespace(
        distributed_sampler_kwargs={"num_replicas": 2, "rank": rank},
        global_rank=rank,
        world_size=2,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )
    standard = make_datamodule(shuffle_seed=3)
    in_memory = make_datamodule(shuffle_seed=3, in_memory=True)
    standard.trainer = in_memory.trainer = trainer
    expected, got = (_epoch(dm.train_dataloader(), 1) for dm in (standard, in_memory))
    assert len(expected) == 4  # 250 of the 500 training images, in batches of 64
    _assert_same_batches(expected, got)
