"""MNISTDataModule on the real MNIST files (never downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from litlab.core.errors import LitlabError
from litlab.vision.data.mnist import MNIST_FILES, MNIST_MEAN, MNIST_STD, MNISTDataModule


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make torchvision's MNIST download fail like an offline machine; records each call."""
    calls: list[Path] = []

    def fail(self: torchvision.datasets.MNIST) -> None:
        calls.append(Path(self.root))
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz: Name or service not known"
        )

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)
    return calls


def _datamodule(data_root: Path, **kwargs) -> MNISTDataModule:
    kwargs.setdefault("num_workers", 0)
    return MNISTDataModule(data_dir=str(data_root), **kwargs)


def test_fit_split_sizes_and_disjoint(data_root, no_download):
    dm = _datamodule(data_root, val_size=5000)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 55000
    assert len(dm.val_set) == 5000
    # The split partitions the 60,000 official training images.
    train_idx, val_idx = set(dm.train_set.indices), set(dm.val_set.indices)
    assert not train_idx & val_idx
    assert train_idx | val_idx == set(range(60000))
    assert no_download == []


def test_split_is_fixed_by_split_seed(data_root):
    splits = []
    for seed in (0, 0, 1):
        dm = _datamodule(data_root, val_size=5000, split_seed=seed)
        torch.manual_seed(seed + 123)  # the global RNG must not matter
        dm.setup("fit")
        splits.append((list(dm.train_set.indices), list(dm.val_set.indices)))
    assert splits[0] == splits[1]
    assert splits[0][0] != splits[2][0]
    assert splits[0][1] != splits[2][1]


def test_test_stage_is_official_test_set(data_root):
    dm = _datamodule(data_root)
    dm.setup("test")
    assert len(dm.test_set) == 10000
    assert not dm.test_set.train
    # First official test digits (LeCun's t10k file): 7, 2, 1, 0, 4.
    assert dm.test_set.targets[:5].tolist() == [7, 2, 1, 0, 4]
    assert len(dm.test_dataloader().dataset) == 10000
    assert dm.predict_dataloader().dataset.dataset is dm.test_set


def test_first_training_labels(data_root):
    dm = _datamodule(data_root)
    dm.setup("fit")
    full = dm.train_set.dataset
    assert len(full) == 60000
    assert full.targets[:5].tolist() == [5, 0, 4, 1, 9]


def test_train_batch_shape_dtype_and_normalisation(data_root):
    dm = _datamodule(data_root, batch_size=32)
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (32, 1, 28, 28)
    assert images.dtype == torch.float32
    assert labels.shape == (32,)
    assert labels.dtype == torch.int64

    # One image against the hand formula (raw / 255 - mean) / std.
    index = dm.train_set.indices[0]
    image, label = dm.train_set[0]
    raw = dm.train_set.dataset.data[index].float() / 255
    expected = ((raw - MNIST_MEAN[0]) / MNIST_STD[0]).unsqueeze(0)
    torch.testing.assert_close(image, expected)
    assert label == int(dm.train_set.dataset.targets[index])

    # Over many training images the normalised pixels are ~N(0, 1).
    pixels = torch.stack([dm.train_set[i][0] for i in range(2000)])
    assert abs(pixels.mean().item()) < 0.05
    assert abs(pixels.std().item() - 1) < 0.05


@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.parametrize(("pixel_range", "low"), [("unit", 0.0), ("symmetric", -1.0)])
def test_pixel_range_maps_raw_pixels(data_root, pixel_range, low, in_memory):
    dm = _datamodule(data_root, batch_size=8, pixel_range=pixel_range, in_memory=in_memory)
    dm.setup("fit")
    images, _ = next(iter(dm.val_dataloader()))
    raw = dm.val_set.dataset.data[dm.val_set.indices[:8]].float() / 255
    torch.testing.assert_close(images.squeeze(1), low + (1 - low) * raw)


def test_unknown_pixel_range(data_root):
    with pytest.raises(LitlabError, match="pixel_range must be one of standardized, unit"):
        _datamodule(data_root, pixel_range="zero-one")


def test_val_loader_is_not_shuffled(data_root):
    dm = _datamodule(data_root, batch_size=16)
    dm.setup("fit")
    first = [next(iter(dm.val_dataloader()))[1] for _ in range(2)]
    expected = torch.tensor([dm.val_set[i][1] for i in range(16)])
    torch.testing.assert_close(first[0], expected)
    torch.testing.assert_close(first[1], expected)


def test_explicit_data_dir_beats_env(data_root, tmp_path, monkeypatch, no_download):
    wrong = tmp_path / "wrong"
    monkeypatch.setenv("LITLAB_DATA", str(wrong))
    assert MNISTDataModule(num_workers=0).data_root == wrong

    dm = MNISTDataModule(data_dir=str(data_root), num_workers=0, download=False)
    assert dm.data_root == data_root
    dm.prepare_data()
    dm.setup("test")
    assert len(dm.test_set) == 10000
    assert no_download == []
    assert not wrong.exists()


def test_missing_files_without_download(tmp_path, no_download):
    dm = MNISTDataModule(data_dir=str(tmp_path), num_workers=0, download=False)
    with pytest.raises(LitlabError) as info:
        dm.prepare_data()
    message = str(info.value)
    for name in MNIST_FILES:
        assert name in message
    assert "LITLAB_DATA" in message
    assert "download is off" in message
    assert no_download == []
    assert list(tmp_path.iterdir()) == []


def test_failed_download_is_reported(tmp_path, no_download):
    dm = MNISTDataModule(data_dir=str(tmp_path), num_workers=0, download=True)
    with pytest.raises(LitlabError, match="download failed") as info:
        dm.prepare_data()
    message = str(info.value)
    for name in MNIST_FILES:
        assert name in message
    assert "Name or service not known" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    assert no_download == [tmp_path]


def test_setup_without_files_raises(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), num_workers=0)
    with pytest.raises(LitlabError, match="prepare_data did not fetch them"):
        dm.setup("fit")


def test_data_dir_that_is_a_file(tmp_path):
    not_a_dir = tmp_path / "mnist.txt"
    not_a_dir.write_text("not a folder")
    with pytest.raises(LitlabError, match="not a directory"):
        MNISTDataModule(data_dir=str(not_a_dir))
