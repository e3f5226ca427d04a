"""CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test colour images, 32x32, 10 classes."""

from __future__ import annotations

from torchvision import datasets
from torchvision.transforms import v2

from litlab.vision.data.image_classification import ImageClassificationDataModule

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FILES = (
    *(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "batches.meta",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class CIFAR10DataModule(ImageClassificationDataModule):
    """CIFAR-10 with a fixed-seed train/val split of the official training set.

    The official test set is the test split. Files are read from
    ``<data_dir>/cifar-10-batches-py`` (torchvision's layout, checksums verified by torchvision)
    and downloaded only when they are missing. The usual augmentation (random crop with 4 pixels
    of padding, horizontal flip) is set in the experiment's YAML. Options: see
    :class:`~litlab.vision.data.image_classification.ImageClassificationDataModule`.
    """

    dataset_cls = datasets.CIFAR10
    dataset_name = "CIFAR-10"
    files_subdir = "cifar-10-batches-py"
    files = CIFAR10_FILES
    mean, std = CIFAR10_MEAN, CIFAR10_STD
    classes = CIFAR10_CLASSES
    image_shape = (3, 32, 32)
    autoaugment_policy = v2.AutoAugmentPolicy.CIFAR10
