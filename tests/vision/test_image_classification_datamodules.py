"""What every image classification DataModule shares, on fake Fashion-MNIST and CIFAR-10 files
in torchvision's layouts (the real ones are not available offline) and on real MNIST."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonargparse
import pytest
import torch
import torchvision
from fake_datasets import accept_fake_cifar10, write_fake_cifar10, write_fake_fashion_mnist

from litlab.core.errors import LitlabError
from litlab.vision.data.cifar10 import CIFAR10_FILES, CIFAR10DataModule
from litlab.vision.data.fashion_mnist import FASHION_MNIST_FILES, FashionMNISTDataModule
from litlab.vision.data.image_classification import (
    DataOptionError,
    ImageClassificationDataModule,
)
from litlab.vision.data.mnist import MNIST_FILES, MNISTDataModule

N_TRAIN, N_TEST, VAL_SIZE = 600, 100, 100


@dataclass
class Fake:
    cls: type[ImageClassificationDataModule]
    root: Path

    def datamodule(self, **kwargs) -> ImageClassificationDataModule:
        kwargs.setdefault("num_workers", 0)
        kwargs.setdefault("val_size", VAL_SIZE)
        kwargs.setdefault("download", False)
        return self.cls(data_dir=str(self.root), **kwargs)


@pytest.fixture(params=["fashion_mnist", "cifar10"])
def fake(request, tmp_path, monkeypatch) -> Fake:
    """A DataModule class with fake files of 600 training and 100 test images under tmp_path."""
    if request.param == "fashion_mnist":
        write_fake_fashion_mnist(tmp_path, n_train=N_TRAIN, n_test=N_TEST)
        return Fake(FashionMNISTDataModule, tmp_path)
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, N_TRAIN // 5, N_TEST))
    return Fake(CIFAR10DataModule, tmp_path)


def _raw_image(dataset, index: int) -> torch.Tensor:
    """One stored image as uint8 (C, H, W), whatever array layout torchvision keeps."""
    image = torch.as_tensor(dataset.data[index])
    return image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1)


def test_split_sizes_disjoint_and_fixed(fake):
    splits = []
    for seed in (0, 0, 1):
        dm = fake.datamodule(split_seed=seed)
        torch.manual_seed(seed + 7)  # the global RNG must not matter
        dm.setup("fit")
        assert (len(dm.train_set), len(dm.val_set)) == (N_TRAIN - VAL_SIZE, VAL_SIZE)
        train_idx, val_idx = set(dm.train_set.indices), set(dm.val_set.indices)
        assert not train_idx & val_idx
        assert train_idx | val_idx == set(range(N_TRAIN))
        splits.append(dm.val_set.indices)
    assert splits[0] == splits[1]
    assert splits[0] != splits[2]


def test_val_size_must_leave_training_images(fake):
    with pytest.raises(DataOptionError, match=f"val_size={N_TRAIN} leaves no training images"):
        fake.datamodule(val_size=N_TRAIN).setup("fit")


def test_official_test_set(fake):
    dm = fake.datamodule()
    dm.setup("test")
    assert len(dm.test_set) == N_TEST
    assert not dm.test_set.train
    # Prediction runs on the test set, each image named by its index.
    predict_set = dm.predict_dataloader().dataset
    assert predict_set.dataset is dm.test_set
    image, index = predict_set[3]
    assert index == 3
    assert torch.equal(image, dm.test_set[3][0])


def test_batches_shapes_and_normalisation(fake):
    dm = fake.datamodule(batch_size=32)
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        images, labels = next(iter(loader))
        assert images.shape == (32, *fake.cls.image_shape)
        assert images.dtype == torch.float32
        assert labels.shape == (32,)
        assert labels.dtype == torch.int64
    image, label = dm.val_set[3]
    index = dm.val_set.indices[3]
    full = dm.val_set.dataset
    mean = torch.tensor(fake.cls.mean).view(-1, 1, 1)
    std = torch.tensor(fake.cls.std).view(-1, 1, 1)
    torch.testing.assert_close(image, (_raw_image(full, index) / 255 - mean) / std)
    assert label == int(full.targets[index])


def test_dataset_declarations():
    for cls, shape, first_class in (
        (MNISTDataModule, (1, 28, 28), "0"),
        (FashionMNISTDataModule, (1, 28, 28), "T-shirt/top"),
        (CIFAR10DataModule, (3, 32, 32), "airplane"),
    ):
        assert cls.image_shape == shape
        assert len(cls.mean) == len(cls.std) == shape[0]
        assert cls(num_workers=0).num_classes == 10
        assert cls.classes[0] == first_class
    assert FashionMNISTDataModule.mean == (0.2860,)
    assert CIFAR10DataModule.std == (0.2470, 0.2435, 0.2616)


def test_in_memory_tensors_match_the_dataset(fake):
    dm = fake.datamodule(in_memory=True)
    dm.setup("fit")
    images, labels = dm.as_tensors(dm.val_set.dataset)
    assert images.shape == (N_TRAIN, *fake.cls.image_shape)
    assert images.dtype == torch.uint8
    for index in (0, 17, N_TRAIN - 1):
        torch.testing.assert_close(images[index], _raw_image(dm.val_set.dataset, index))
        assert labels[index] == int(dm.val_set.dataset.targets[index])


def test_mnist_normalised_pixels_are_standard(data_root):
    dm = MNISTDataModule(data_dir=str(data_root), num_workers=0, batch_size=1000)
    dm.setup("fit")
    images, _ = next(iter(dm.train_dataloader()))
    assert abs(images.mean().item()) < 0.05
    assert abs(images.std().item() - 1) < 0.05


MISSING = [
    (MNISTDataModule, MNIST_FILES, "MNIST/raw", torchvision.datasets.MNIST),
    (FashionMNISTDataModule, FASHION_MNIST_FILES, "FashionMNIST/raw", torchvision.datasets.MNIST),
    (CIFAR10DataModule, CIFAR10_FILES, "cifar-10-batches-py", torchvision.datasets.CIFAR10),
]


@pytest.fixture
def offline(monkeypatch):
    """Make torchvision's downloads fail like an offline machine; records each call."""
    calls = []

    def fail(self) -> None:
        calls.append(Path(self.root))
        raise RuntimeError("Error downloading: Name or service not known")

    for cls in (torchvision.datasets.MNIST, torchvision.datasets.CIFAR10):
        monkeypatch.setattr(cls, "download", fail)
    return calls


@pytest.mark.parametrize(("cls", "files", "subdir", "_"), MISSING)
def test_missing_files_name_the_files(cls, files, subdir, _, tmp_path, offline):
    dm = cls(data_dir=str(tmp_path), num_workers=0, download=False)
    with pytest.raises(LitlabError, match="download is off") as info:
        dm.prepare_data()
    message = str(info.value)
    assert all(name in message for name in files)
    assert f"{subdir}/" in message
    assert "LITLAB_DATA" in message
    assert offline == []
    with pytest.raises(LitlabError, match="prepare_data did not fetch them"):
        dm.setup("fit")


@pytest.mark.parametrize(("cls", "files", "subdir", "_"), MISSING)
def test_failed_download_names_the_files(cls, files, subdir, _, tmp_path, offline):
    dm = cls(data_dir=str(tmp_path), num_workers=0)
    with pytest.raises(LitlabError, match="download failed") as info:
        dm.prepare_data()
    assert all(name in str(info.value) for name in files)
    assert "Name or service not known" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert offline == [tmp_path]


def test_present_files_are_not_downloaded(fake, offline):
    dm = fake.datamodule(download=True)
    dm.prepare_data()
    dm.setup("test")
    assert offline == []


def test_corrupted_cifar10_is_reported(tmp_path):
    write_fake_cifar10(tmp_path, n_per_batch=10, n_test=10)  # right names, wrong checksums
    dm = CIFAR10DataModule(data_dir=str(tmp_path), num_workers=0, download=False)
    dm.prepare_data()
    with pytest.raises(LitlabError, match=r"could not be read: truncated or corrupt") as info:
        dm.setup("fit")
    assert f"{tmp_path / 'cifar-10-batches-py' / 'data_batch_1'} (its MD5" in str(info.value)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"in_memory": True, "auto_augment": "randaugment"}, "auto_augment='randaugment'"),
        ({"in_memory": True, "auto_augment": "trivialaugment"}, "in_memory"),
        ({"in_memory": True, "random_erasing": 0.25}, "random_erasing"),
        ({"random_crop_padding": -1}, "random_crop_padding"),
        ({"mixup_alpha": -0.2}, "mixup_alpha"),
        ({"random_erasing": 1.5}, "random_erasing"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_are_refused(options, named):
    with pytest.raises(DataOptionError, match="CIFAR10DataModule") as info:
        CIFAR10DataModule(num_workers=0, **options)
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)


def test_in_memory_takes_crop_and_flip():
    dm = CIFAR10DataModule(
        num_workers=0, in_memory=True, random_crop_padding=4, horizontal_flip=True
    )
    assert dm.augments


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule])
def test_constructor_is_yaml_configurable(cls, tmp_path):
    # What LightningCLI does with `data: init_args:`: every argument typed and parseable.
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    config = parser.parse_args(
        [
            f"--data.data_dir={tmp_path}",
            "--data.random_crop_padding=4",
            "--data.horizontal_flip=true",
            "--data.auto_augment=trivialaugment",
            "--data.mixup_alpha=0.2",
            "--data.cutmix_alpha=1.0",
            "--data.in_memory=false",
        ]
    )
    dm = cls(**config.data.as_dict())
    assert (dm.random_crop_padding, dm.horizontal_flip, dm.auto_augment) == (
        4,
        True,
        "trivialaugment",
    )
    assert dm.batch_mixing is not None
    with pytest.raises(jsonargparse.ArgumentError):
        parser.parse_args(["--data.auto_augment=cutout"])
