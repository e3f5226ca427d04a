"""Training augmentation: torchvision's per-image pipeline and the batched on-device crop/flip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fake_datasets import accept_fake_cifar10, write_fake_cifar10

from litlab.vision.data.augmentation import eval_transform, train_transform
from litlab.vision.data.cifar10 import CIFAR10DataModule
from litlab.vision.data.device_augmentation import random_crop, random_horizontal_flip


def _crops(image: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every crop RandomCrop(padding=padding) can return for one (C, H, W) image."""
    height, width = image.shape[-2:]
    padded = F.pad(image, (padding,) * 4)
    return [
        padded[..., top : top + height, left : left + width]
        for top in range(2 * padding + 1)
        for left in range(2 * padding + 1)
    ]


def _crop_index(output: torch.Tensor, image: torch.Tensor, padding: int) -> int:
    matches = [i for i, crop in enumerate(_crops(image, padding)) if torch.equal(output, crop)]
    assert matches, "the output is not a padded crop of the input"
    return matches[0]


def _asymmetric_image(channels: int = 1, size: int = 8) -> torch.Tensor:
    # Distinct values everywhere, so every crop offset and the flip give a different image.
    return torch.arange(1, channels * size * size + 1, dtype=torch.uint8).view(channels, size, size)


@pytest.fixture
def cifar_datamodule(tmp_path, monkeypatch):
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(tmp_path, n_per_batch=40, n_test=20))

    def make(**kwargs) -> CIFAR10DataModule:
        dm = CIFAR10DataModule(data_dir=str(tmp_path), num_workers=0, val_size=50, **kwargs)
        dm.setup("fit")
        return dm

    return make


def test_train_images_are_augmented_eval_images_are_not(cifar_datamodule):
    dm = cifar_datamodule(random_crop_padding=4, horizontal_flip=True, auto_augment="randaugment")
    train_full, eval_full = dm.train_set.dataset, dm.val_set.dataset
    assert train_full is not eval_full
    differ = 0
    for index in range(30):
        augmented, label = train_full[index]
        plain, plain_label = eval_full[index]
        assert augmented.shape == plain.shape == (3, 32, 32)
        assert label == plain_label
        differ += not torch.equal(augmented, plain)
        torch.testing.assert_close(eval_full[index][0], plain)  # evaluation is deterministic
    assert differ >= 25
    # The validation loader goes through the evaluation transform only.
    images, _ = next(iter(dm.val_dataloader()))
    first = dm.val_set.indices[0]
    torch.testing.assert_close(images[0], eval_full[first][0])


def test_no_augmentation_shares_one_dataset(cifar_datamodule):
    dm = cifar_datamodule()
    assert not dm.augments
    assert dm.train_set.dataset is dm.val_set.dataset
    assert dm.train_transform is dm.eval_transform


def test_flip_mirrors_or_keeps_the_image():
    image = _asymmetric_image()
    transform = train_transform((0.0,), (1.0,), (8, 8), horizontal_flip=True)
    expected = eval_transform((0.0,), (1.0,))
    plain, mirrored = expected(image), expected(image.flip(-1))
    seen = set()
    for _ in range(40):
        output = transform(image)
        assert torch.equal(output, plain) or torch.equal(output, mirrored)
        seen.add(torch.equal(output, mirrored))
    assert seen == {True, False}


def test_crop_with_padding_translates_with_zero_fill():
    image = _asymmetric_image(size=6)
    transform = train_transform((0.0,), (1.0,), (6, 6), random_crop_padding=2)
    offsets = set()
    for _ in range(60):
        output = transform(image)
        assert output.shape == (1, 6, 6)
        pixels = (output * 255).round().to(torch.uint8)
        offsets.add(_crop_index(pixels, image, padding=2))
    assert len(offsets) > 5


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment", "autoaugment"])
@pytest.mark.parametrize("channels", [1, 3])
def test_policies_keep_shape_and_dtype(policy, channels):
    image = torch.randint(0, 256, (channels, 32, 32), dtype=torch.uint8)
    mean, std = (0.5,) * channels, (0.25,) * channels
    transform = train_transform(mean, std, (32, 32), auto_augment=policy)
    outputs = [transform(image) for _ in range(10)]
    assert all(out.shape == (channels, 32, 32) and out.dtype == torch.float32 for out in outputs)
    assert any(not torch.equal(out, eval_transform(mean, std)(image)) for out in outputs)


def test_random_erasing_blanks_a_region():
    image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    output = train_transform((0.0,) * 3, (1.0,) * 3, (32, 32), random_erasing=1.0)(image)
    assert output.shape == (3, 32, 32)
    assert (output != 200 / 255).any()


def test_batched_crop_gives_each_image_its_own_padded_crop():
    images = torch.stack([_asymmetric_image(channels=3) + i for i in range(16)])
    generator = torch.Generator().manual_seed(0)
    output = random_crop(images, 2, generator)
    assert output.shape == images.shape
    assert output.dtype == torch.uint8
    offsets = {_crop_index(out, image, 2) for out, image in zip(output, images, strict=True)}
    assert len(offsets) > 4
    again = random_crop(images, 2, torch.Generator().manual_seed(0))
    assert torch.equal(output, again)
    assert random_crop(images, 0, generator) is images


def test_batched_flip_mirrors_some_images_and_keeps_the_rest():
    images = torch.stack([_asymmetric_image(channels=3) + i for i in range(32)])
    output = random_horizontal_flip(images, torch.Generator().manual_seed(1))
    mirrored = [torch.equal(out, image.flip(-1)) for out, image in zip(output, images, strict=True)]
    kept = [torch.equal(out, image) for out, image in zip(output, images, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert 4 < sum(mirrored) < 28
