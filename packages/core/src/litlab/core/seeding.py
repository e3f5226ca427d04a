"""The run's seed and seeds derived from it: one source for every random stream a domain draws
(training order, augmentation, sampling), so that a resumed or relaunched run redraws them."""

from __future__ import annotations

import hashlib
import os

# Set by Lightning's seed_everything (the CLI's `seed_everything:`) and inherited by the processes
# it launches, so every DDP rank reads the same seed without any communication.
GLOBAL_SEED_ENV_VAR = "PL_GLOBAL_SEED"


def run_seed() -> int:
    """The run's seed from ``seed_everything``; 0 when the run is not seeded (as Lightning does)."""
    return int(os.environ.get(GLOBAL_SEED_ENV_VAR, 0))


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (a hash of them): ``seed + epoch`` would make seed 1
    at epoch 0 repeat seed 0 at epoch 1, which correlates the runs of a seed sweep."""
    data = b"".join((part % 2**64).to_bytes(8, "little") for part in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1
