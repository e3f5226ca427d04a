"""Small fake copies of datasets in torchvision's own on-disk layouts, for tests that cannot
download the real ones: deterministic random pixels, labels cycling through 0..9."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from torchvision import datasets

from litlab.vision.data.cifar10 import CIFAR10_CLASSES


def _pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _labels(seed: int, count: int) -> np.ndarray:
    # Every class present, in a shuffled order, so no split sees a single class.
    return np.random.default_rng(seed).permutation(np.arange(count) % 10).astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    # IDX (LeCun's format): zero bytes, type 0x08 (ubyte), the number of dimensions,
    # each dimension as a big-endian int32, then the data.
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fake_mnist_like(
    root: Path, folder: str, n_train: int = 600, n_test: int = 100, seed: int = 0
) -> Path:
    """Write ``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (decompressed,
    as torchvision leaves them after a download) with 28x28 images; return the raw folder."""
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for offset, (prefix, count) in enumerate((("train", n_train), ("t10k", n_test))):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", _pixels(seed + offset, (count, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", _labels(seed + offset, count))
    return raw


def write_fake_fashion_mnist(
    root: Path, n_train: int = 600, n_test: int = 100, seed: int = 0
) -> Path:
    """Fake Fashion-MNIST under ``root/FashionMNIST/raw`` that
    ``torchvision.datasets.FashionMNIST(root)`` loads as it is."""
    return write_fake_mnist_like(root, "FashionMNIST", n_train, n_test, seed)


def write_fake_cifar10(
    root: Path, n_per_batch: int = 100, n_test: int = 100, seed: int = 0
) -> dict[str, str]:
    """Write ``root/cifar-10-batches-py/`` as the CIFAR-10 python release has it: pickles
    ``data_batch_1``..``data_batch_5`` and ``test_batch`` (``data`` uint8 (N, 3072) in channel
    planes, ``labels``) and ``batches.meta`` (``label_names``). Returns each file's MD5.

    torchvision checks these files against the real release's MD5s; give the returned ones to
    :func:`accept_fake_cifar10` so that ``torchvision.datasets.CIFAR10(root)`` loads them.
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for offset, (name, count) in enumerate(batches):
        entry = {
            "batch_label": f"fake {name}",
            "labels": _labels(seed + offset, count).tolist(),
            "data": _pixels(seed + offset, (count, 3 * 32 * 32)),
            "filenames": [f"fake_{name}_{i}.png" for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {
        "num_cases_per_batch": n_per_batch,
        "label_names": list(CIFAR10_CLASSES),
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return {
        path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())
    }


def accept_fake_cifar10(monkeypatch: pytest.MonkeyPatch, checksums: dict[str, str]) -> None:
    """Make torchvision's CIFAR10 expect the fake files' MD5s instead of the real release's, so
    its integrity check still runs, on the fake files."""
    cifar = datasets.CIFAR10
    monkeypatch.setattr(
        cifar, "train_list", [[name, checksums[name]] for name, _ in cifar.train_list]
    )
    monkeypatch.setattr(
        cifar, "test_list", [[name, checksums[name]] for name, _ in cifar.test_list]
    )
    monkeypatch.setattr(cifar, "meta", {**cifar.meta, "md5": checksums[cifar.meta["filename"]]})
