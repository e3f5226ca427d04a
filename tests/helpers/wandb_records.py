"""Read the records of an offline W&B run (``run-<id>.wandb``).

wandb 0.19+ keeps no Python reader for its transaction log, which is a LevelDB-style log:
a 7-byte file header, then 32 KiB blocks of chunks, each with a 7-byte header
(crc32, length, type) and a piece of one protobuf ``Record``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
FILE_HEADER = struct.Struct("<4sHB")
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    ident, _magic, _version = FILE_HEADER.unpack_from(data)
    assert ident == b":W&B", f"{path} is not a W&B transaction log"
    pos, pieces = FILE_HEADER.size, []
    while pos + CHUNK_HEADER.size <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER.size:  # block trailer too small for a header
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        pos += CHUNK_HEADER.size
        pieces.append(data[pos : pos + length])
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(pieces))
            pieces = []
            yield record
        elif kind == 0 and length == 0:
            break


def config_updates(path: Path) -> list[tuple[str, str]]:
    """Every (key, JSON value) the run's config received, in order."""
    updates = []
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        config = record.config if kind == "config" else record.run.config if kind == "run" else None
        if config is not None:
            updates += [
                (item.key or ".".join(item.nested_key), item.value_json) for item in config.update
            ]
    return updates
