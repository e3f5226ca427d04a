"""MNIST (LeCun et al. 1998): 60,000 training and 10,000 test digits, 28x28 grey."""

from __future__ import annotations

from torchvision import datasets

from litlab.vision.data.image_classification import ImageClassificationDataModule

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(ImageClassificationDataModule):
    """MNIST with a fixed-seed train/val split of the official training set.

    The official test set is the test split. Files are read from ``<data_dir>/MNIST/raw``
    (torchvision's layout) and downloaded only when they are missing. Options: see
    :class:`~litlab.vision.data.image_classification.ImageClassificationDataModule`.
    """

    dataset_cls = datasets.MNIST
    dataset_name = "MNIST"
    files_subdir = "MNIST/raw"
    files = MNIST_FILES
    mean, std = MNIST_MEAN, MNIST_STD
    classes = tuple(str(digit) for digit in range(10))
    image_shape = (1, 28, 28)
