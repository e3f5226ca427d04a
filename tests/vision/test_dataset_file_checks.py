"""A truncated or corrupt dataset file is named, with what is wrong and how to get it back."""

from __future__ import annotations

import pytest
from fake_datasets import accept_fake_cifar10, write_fake_cifar10, write_fake_mnist_like

from litlab.core.errors import LitlabError
from litlab.vision.data.cifar10 import CIFAR10DataModule
from litlab.vision.data.fashion_mnist import FashionMNISTDataModule
from litlab.vision.data.file_checks import idx_file_problem
from litlab.vision.data.mnist import MNISTDataModule

N_TRAIN, N_TEST = 600, 100


def test_idx_check_against_the_format(tmp_path):
    raw = write_fake_mnist_like(tmp_path, "MNIST", N_TRAIN, N_TEST)
    images = raw / "train-images-idx3-ubyte"
    assert idx_file_problem(images) is None
    # Header: 4 magic bytes and three int32 sizes, then 600 * 28 * 28 bytes.
    expected = 4 + 3 * 4 + N_TRAIN * 28 * 28
    images.write_bytes(images.read_bytes()[:1000])
    assert idx_file_problem(images) == (
        f"1000 bytes where its header announces {expected} (a 600x28x28 array)"
    )
    images.write_bytes(b"<html>Not Found</html>")
    assert idx_file_problem(images).startswith("not an IDX file: its first bytes are 3c 68 74 6d")


def test_truncated_mnist_images_are_named(tmp_path):
    raw = write_fake_mnist_like(tmp_path, "MNIST", N_TRAIN, N_TEST)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    dm = MNISTDataModule(data_dir=str(tmp_path), num_workers=0, val_size=100, download=False)
    with pytest.raises(LitlabError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert message.startswith(f"MNIST could not be read: truncated or corrupt {images} (")
    assert "Delete it so that it is downloaded again with --data.download true" in message
    assert "labels" not in message


def test_truncated_fashion_mnist_test_labels_are_named(tmp_path):
    raw = write_fake_mnist_like(tmp_path, "FashionMNIST", N_TRAIN, N_TEST)
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:50])
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), num_workers=0, download=True)
    with pytest.raises(LitlabError) as info:
        dm.setup("test")
    assert f"truncated or corrupt {labels} (50 bytes where" in str(info.value)
    assert "Delete it so that it is downloaded again," in str(info.value)


def test_one_corrupt_cifar_batch_is_named(tmp_path, monkeypatch):
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, n_per_batch=10, n_test=10))
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-100])
    dm = CIFAR10DataModule(data_dir=str(tmp_path), num_workers=0, val_size=10, download=False)
    with pytest.raises(LitlabError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert f"truncated or corrupt {batch} (its MD5 is not the official one)." in message
    assert "data_batch_1" not in message
