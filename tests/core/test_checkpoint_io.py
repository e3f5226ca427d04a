"""AtomicCheckpointIO: a save that dies midway leaves the previous checkpoint whole."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from litlab.core.checkpoint_io import AtomicCheckpointIO, use_atomic_checkpoints
from litlab.core.checkpoints.checks import CheckpointError


def checkpoint(value: float) -> dict:
    return {"state_dict": {"w": torch.full((64, 64), value)}, "global_step": int(value)}


def test_save_and_load_round_trip(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(checkpoint(1.0), path)
    loaded = io.load_checkpoint(path)
    torch.testing.assert_close(loaded["state_dict"]["w"], torch.full((64, 64), 1.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint(checkpoint(1.0), path)
    before = path.read_bytes()
    real_save = torch.save

    def crash_halfway(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.seek(file.tell() // 2)
        file.truncate()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint(checkpoint(2.0), path)
    assert path.read_bytes() == before
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_leftovers_of_a_killed_save_are_removed_by_the_next_one(tmp_path):
    leftover = tmp_path / ".last.ckpt.tmp-0123abcd.tmp"
    leftover.write_bytes(b"half a checkpoint")
    other = tmp_path / ".best.ckpt.tmp-0123abcd.tmp"
    other.write_bytes(b"another file's")
    AtomicCheckpointIO().save_checkpoint(checkpoint(1.0), tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "last.ckpt"]


def test_a_truncated_file_is_named_when_loaded(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint(1.0), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="is corrupt or truncated") as info:
        AtomicCheckpointIO().load_checkpoint(path)
    assert str(path) in str(info.value)


def test_the_default_checkpoint_io_becomes_atomic():
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert type(trainer.strategy.checkpoint_io) is TorchCheckpointIO
    use_atomic_checkpoints(trainer.strategy)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_configured_checkpoint_io_is_kept():
    configured = AsyncCheckpointIO(TorchCheckpointIO())
    trainer = Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False, plugins=[configured]
    )
    use_atomic_checkpoints(trainer.strategy)
    assert trainer.strategy.checkpoint_io is configured
