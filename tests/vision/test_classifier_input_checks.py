"""ImageClassifier's answers to data it cannot take: labels outside its classes, images of
another shape than its network's."""

from __future__ import annotations

import pytest
import torch
from fake_datasets import accept_fake_cifar10, write_fake_cifar10
from lightning.pytorch import Trainer
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.errors import LitlabError
from litlab.vision.data.augmentation import eval_transform
from litlab.vision.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, CIFAR10DataModule
from litlab.vision.data.image_folder import ImageFolderDataset
from litlab.vision.models.cnn import SmallCNN
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.tasks.classification import ImageClassifier


def trainer(**options) -> Trainer:
    return Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


def test_label_outside_the_classes_names_batch_and_sample():
    labels = torch.tensor([0, 1, 2, 0, 1, 3, 2, 0])  # 3 is not a class of 3
    data = DataLoader(TensorDataset(torch.randn(8, 1, 2, 2), labels), batch_size=4)
    task = ImageClassifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), num_classes=3)
    with pytest.raises(LitlabError) as info:
        trainer(max_epochs=1).fit(task, data)
    assert str(info.value).startswith(
        "train batch 1: sample 1 of the batch has label 3, outside 0..2 (num_classes=3"
    )


@pytest.fixture
def cifar(tmp_path, monkeypatch) -> CIFAR10DataModule:
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, n_per_batch=10, n_test=10))
    return CIFAR10DataModule(data_dir=str(tmp_path), num_workers=0, val_size=10, batch_size=10)


@pytest.mark.parametrize(
    ("network", "fixes"),
    [
        (
            SmallCNN(in_channels=1, image_size=28, channels=[4], hidden=8),
            "SmallCNN is built with in_channels=1, image_size=28: set "
            "model.init_args.network.init_args.in_channels: 3, "
            "model.init_args.network.init_args.image_size: 32.",
        ),
        (
            MLPClassifier(784, [8], 10),
            "MLPClassifier is built with in_features=784: set "
            "model.init_args.network.init_args.in_features: 3072.",
        ),
    ],
    ids=["cnn", "mlp"],
)
def test_network_built_for_other_images_is_refused_before_any_batch(cifar, network, fixes):
    task = ImageClassifier(network, num_classes=10)
    with pytest.raises(LitlabError) as info:
        trainer().validate(task, datamodule=cifar)
    assert str(info.value) == f"the data gives images of shape (3, 32, 32) but {fixes}"


def test_predict_names_the_files_a_network_cannot_take(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), "red").save(tmp_path / name)
    images = ImageFolderDataset(
        tmp_path, "RGB", (32, 32), eval_transform(CIFAR10_MEAN, CIFAR10_STD)
    )
    task = ImageClassifier(SmallCNN(in_channels=1, image_size=28, channels=[4]), num_classes=10)
    with pytest.raises(LitlabError) as info:
        trainer().predict(task, DataLoader(images, batch_size=2))
    assert str(info.value).startswith(
        "predict batch 0 (a.png, b.png): SmallCNN cannot take images of shape (3, 32, 32): "
        "SmallCNN expects images of shape (B, 1, 28, 28)"
    )
