"""Per-image torchvision (v2) pipelines: the evaluation transform and the training augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torchvision.transforms import v2

AutoAugmentName = Literal["none", "randaugment", "trivialaugment", "autoaugment"]


def eval_transform(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Image -> float tensor in [0, 1] -> normalised: the same for validation, test and predict."""
    return v2.Compose(
        [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    )


def train_transform(
    mean: Sequence[float],
    std: Sequence[float],
    image_size: tuple[int, int],
    random_crop_padding: int = 0,
    horizontal_flip: bool = False,
    auto_augment: AutoAugmentName = "none",
    autoaugment_policy: v2.AutoAugmentPolicy = v2.AutoAugmentPolicy.IMAGENET,
    random_erasing: float = 0.0,
) -> v2.Compose:
    """The evaluation transform with the chosen augmentations, in the order of torchvision's
    reference scripts: geometry and policies on the uint8 image, erasing on the normalised one."""
    steps: list[v2.Transform] = [v2.ToImage()]
    if random_crop_padding > 0:
        # Zero padding: the padded border is black in pixel space, as in the CIFAR papers.
        steps.append(v2.RandomCrop(image_size, padding=random_crop_padding))
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    if auto_augment == "randaugment":
        steps.append(v2.RandAugment())
    elif auto_augment == "trivialaugment":
        steps.append(v2.TrivialAugmentWide())
    elif auto_augment == "autoaugment":
        steps.append(v2.AutoAugment(autoaugment_policy))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing))
    return v2.Compose(steps)
