"""Where a resumed fit goes on: the run folder of its checkpoint, the checkpoint a relaunched
command (a requeued SLURM job) continues from, and the resume command litlab prints."""

import os

import pytest
from jsonargparse import Namespace

from litlab.app.cli import _resume_command
from litlab.app.runs import relaunch_checkpoint
from litlab.core.checkpoints.run_lookup import run_dir_of_checkpoint


def make_run(root, name="20260101-000000-aaaaaaaa", checkpoints=("last",)):
    run = root / "exp" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    for checkpoint in checkpoints:
        (run / "checkpoints" / f"{checkpoint}.ckpt").write_bytes(b"")
    return run


def test_a_checkpoint_in_a_run_folder_belongs_to_that_run(tmp_path):
    run = make_run(tmp_path)
    assert run_dir_of_checkpoint(run / "checkpoints" / "last.ckpt") == run
    loose = tmp_path / "elsewhere" / "model.ckpt"
    loose.parent.mkdir()
    loose.write_bytes(b"")
    assert run_dir_of_checkpoint(loose) is None


def test_relaunch_continues_from_the_newest_of_last_and_slurm_hpc_checkpoints(tmp_path):
    run = make_run(tmp_path)
    assert relaunch_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    hpc = run / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"")
    os.utime(run / "checkpoints" / "last.ckpt", (1, 1))
    assert relaunch_checkpoint(run) == hpc  # SLURM's requeue signal came after the last save
    os.utime(hpc, (0, 0))
    assert relaunch_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    assert relaunch_checkpoint(tmp_path / "new-run") is None


@pytest.fixture
def launched_without_uv(monkeypatch):
    # `uv run pytest` sets it; the commands below are those of a plain `litlab` launch.
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH", raising=False)


@pytest.mark.usefixtures("launched_without_uv")
def test_resume_command_is_the_command_run_with_ckpt_path_last(tmp_path):
    run = make_run(tmp_path)
    config = Namespace(runs_root=str(tmp_path), experiment="exp")
    argv = ["fit", "-c", "my config.yaml", "--model.lr", "0.1", "--ckpt_path", "old.ckpt"]
    command = _resume_command(argv, config, run / "checkpoints" / "last.ckpt")
    assert command == "litlab fit -c 'my config.yaml' --model.lr 0.1 --ckpt_path last"
    argv = ["fit", "-c", "a.yaml", "--ckpt_path=old.ckpt"]
    command = _resume_command(argv, config, run / "checkpoints" / "last.ckpt")
    assert command == "litlab fit -c a.yaml --ckpt_path last"


@pytest.mark.usefixtures("launched_without_uv")
def test_resume_command_names_the_checkpoint_when_last_is_another_runs(tmp_path):
    stopped = make_run(tmp_path, "20260101-000000-aaaaaaaa")
    make_run(tmp_path, "20260102-000000-bbbbbbbb")  # started after it
    config = Namespace(runs_root=str(tmp_path), experiment="exp")
    checkpoint = stopped / "checkpoints" / "last.ckpt"
    command = _resume_command(["fit", "-c", "a.yaml"], config, checkpoint)
    assert command == f"litlab fit -c a.yaml --ckpt_path {checkpoint}"


def test_resume_command_is_run_through_uv_when_litlab_was(tmp_path, monkeypatch):
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    run = make_run(tmp_path)
    config = Namespace(runs_root=str(tmp_path), experiment="exp")
    command = _resume_command(["fit", "-c", "a.yaml"], config, run / "checkpoints" / "last.ckpt")
    assert command == "uv run litlab fit -c a.yaml --ckpt_path last"
