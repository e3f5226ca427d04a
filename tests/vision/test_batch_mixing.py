"""MixUp and CutMix on training batches: soft labels that match how the pixels were mixed, and
never on validation batches."""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from fake_datasets import accept_fake_cifar10, write_fake_cifar10

from litlab.vision.data.batch_mixing import batch_mixing
from litlab.vision.data.cifar10 import CIFAR10DataModule

NUM_CLASSES = 10
# Lightning's CombinedLoader on torch 2.15 (not this code): remove once Lightning adapts.
LIGHTNING_PYTREE_WARNING = "ignore:.*treespec, LeafSpec.* is deprecated:FutureWarning"


def _batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    # Constant images with distinct values: every output pixel tells which image it came from.
    values = torch.arange(1, size + 1, dtype=torch.float32)
    images = values.view(size, 1, 1, 1).expand(size, 3, 16, 16).clone()
    labels = torch.arange(size) % NUM_CLASSES  # neighbours (which get paired) differ
    return images, labels


def _check_two_hot(soft: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Assert ``soft`` = w * onehot(label) + (1 - w) * onehot(previous label); return w."""
    assert soft.shape == (len(labels), NUM_CLASSES)
    assert soft.dtype == torch.float32
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(len(labels)))
    weight = soft[torch.arange(len(labels)), labels]
    own, partner = F.one_hot(labels, NUM_CLASSES), F.one_hot(labels.roll(1), NUM_CLASSES)
    torch.testing.assert_close(soft, weight[:, None] * own + (1 - weight[:, None]) * partner)
    return weight


@pytest.mark.parametrize("seed", range(5))
def test_mixup_label_weight_is_the_pixel_weight(seed):
    torch.manual_seed(seed)
    images, labels = _batch()
    mixed, soft = batch_mixing(0.4, 0.0, NUM_CLASSES)(images, labels)
    weight = _check_two_hot(soft, labels)
    lam = weight[0].item()
    assert 0 < lam < 1
    torch.testing.assert_close(weight, torch.full_like(weight, lam))  # one lambda per batch
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.roll(1, dims=0))


@pytest.mark.parametrize("seed", range(5))
def test_cutmix_label_weight_is_the_kept_area(seed):
    torch.manual_seed(seed)
    images, labels = _batch()
    mixed, soft = batch_mixing(0.0, 1.0, NUM_CLASSES)(images, labels)
    weight = _check_two_hot(soft, labels)
    own = mixed == images
    pasted = mixed == images.roll(1, dims=0)
    assert (own | pasted).all()  # every pixel comes whole from one of the two images
    kept = own[:, 0].flatten(1).float().mean(dim=1)
    torch.testing.assert_close(weight, kept)


def test_both_alphas_pick_one_mix_per_batch():
    torch.manual_seed(0)
    images, labels = _batch()
    kinds = set()
    for _ in range(30):
        mixed, soft = batch_mixing(0.4, 1.0, NUM_CLASSES)(images, labels)
        _check_two_hot(soft, labels)
        whole = ((mixed == images) | (mixed == images.roll(1, dims=0))).all()
        kinds.add("cutmix" if whole else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_no_alphas_no_mixing():
    assert batch_mixing(0.0, 0.0, NUM_CLASSES) is None


@pytest.fixture
def fake_cifar_root(tmp_path, monkeypatch):
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, n_per_batch=40, n_test=20))
    return tmp_path


def test_datamodule_mixes_training_batches_only(fake_cifar_root):
    dm = CIFAR10DataModule(data_dir=str(fake_cifar_root), num_workers=0, mixup_alpha=0.2)
    images, labels = _batch()
    assert dm.on_after_batch_transfer((images, labels), 0)[1] is labels  # no trainer
    for training in (False, True):
        dm.trainer = SimpleNamespace(training=training)
        _, out = dm.on_after_batch_transfer((images, labels), 0)
        assert out.shape == ((8, NUM_CLASSES) if training else (8,))


class RecordLabels(pl.LightningModule):
    """Records the labels each step receives."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3 * 32 * 32, NUM_CLASSES)
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": []}

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        self.seen[stage].append(labels)
        return F.cross_entropy(self.layer(images.flatten(1)), labels)

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.filterwarnings(LIGHTNING_PYTREE_WARNING)
@pytest.mark.parametrize("in_memory", [False, True])
def test_trainer_mixes_training_not_validation(fake_cifar_root, in_memory):
    dm = CIFAR10DataModule(
        data_dir=str(fake_cifar_root),
        num_workers=0,
        batch_size=16,
        val_size=50,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        in_memory=in_memory,
    )
    module = RecordLabels()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, dm)
    assert len(module.seen["train"]) == 3
    assert all(labels.shape == (16, NUM_CLASSES) for labels in module.seen["train"])
    assert len(module.seen["val"]) == 3  # the sanity check's batch and two in the epoch
    assert all(labels.shape == (16,) for labels in module.seen["val"])
    assert all(labels.dtype == torch.int64 for labels in module.seen["val"])
