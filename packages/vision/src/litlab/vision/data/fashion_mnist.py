"""Fashion-MNIST (Xiao et al. 2017): Zalando's 60,000 training and 10,000 test clothing images,
28x28 grey, a drop-in replacement for MNIST that is harder to classify."""

from __future__ import annotations

from torchvision import datasets

from litlab.vision.data.image_classification import ImageClassificationDataModule

FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class FashionMNISTDataModule(ImageClassificationDataModule):
    """Fashion-MNIST with a fixed-seed train/val split of the official training set.

    The official test set is the test split. Files are read from ``<data_dir>/FashionMNIST/raw``
    (torchvision's layout) and downloaded only when they are missing. Options: see
    :class:`~litlab.vision.data.image_classification.ImageClassificationDataModule`.
    """

    dataset_cls = datasets.FashionMNIST
    dataset_name = "Fashion-MNIST"
    files_subdir = "FashionMNIST/raw"
    files = FASHION_MNIST_FILES
    mean, std = FASHION_MNIST_MEAN, FASHION_MNIST_STD
    classes = FASHION_MNIST_CLASSES
    image_shape = (1, 28, 28)
