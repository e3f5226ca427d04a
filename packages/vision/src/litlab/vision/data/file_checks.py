"""Which file of a torchvision dataset is truncated or corrupt, and how.

torchvision says only "Dataset not found or corrupted" (CIFAR) or fails with a reshape error
(MNIST); these checks name the file. They run after a dataset failed to load, not before.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from torchvision.datasets import VisionDataset
from torchvision.datasets.utils import check_integrity

# IDX type codes (LeCun's format) and their item sizes in bytes.
IDX_ITEM_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def idx_file_problem(path: Path) -> str | None:
    """What is wrong with an IDX file (MNIST, Fashion-MNIST), or None.

    The header is two zero bytes, the type code, the number of dimensions and each dimension
    as a big-endian int32; the data after it must be exactly as long as they announce.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        magic = file.read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_ITEM_SIZES:
            return f"not an IDX file: its first bytes are {magic.hex(' ') or 'missing'}"
        dims_bytes = file.read(4 * magic[3])
    if len(dims_bytes) < 4 * magic[3]:
        return f"only {size} bytes, shorter than its own header"
    dims = struct.unpack(f">{magic[3]}I", dims_bytes)
    expected = 4 + 4 * len(dims) + math.prod(dims) * IDX_ITEM_SIZES[magic[2]]
    if size != expected:
        shape = "x".join(map(str, dims))
        return f"{size} bytes where its header announces {expected} (a {shape} array)"
    return None


def official_checksums(dataset_cls: type[VisionDataset]) -> dict[str, str]:
    """File name -> MD5 of the files torchvision verifies itself (CIFAR's batches and meta)."""
    entries = [*getattr(dataset_cls, "train_list", []), *getattr(dataset_cls, "test_list", [])]
    meta = getattr(dataset_cls, "meta", None)
    if isinstance(meta, dict) and "filename" in meta:
        entries.append([meta["filename"], meta["md5"]])
    return {name: md5 for name, md5 in entries}


def dataset_file_problem(dataset_cls: type[VisionDataset], path: Path) -> str | None:
    """What is wrong with one file of ``dataset_cls``'s raw files, or None when it looks whole
    (or there is no way to tell)."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    if (md5 := official_checksums(dataset_cls).get(path.name)) is not None:
        return None if check_integrity(str(path), md5) else "its MD5 is not the official one"
    if path.name.endswith("-ubyte"):
        return idx_file_problem(path)
    return None
