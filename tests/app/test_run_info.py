"""Every run records what it was made from: git state, command line, versions, host, time."""

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import wandb
import yaml
from wandb_records import config_updates

from litlab.app import run_info
from litlab.app.cli import main
from litlab.app.run_info import MAX_DIRTY_FILES, collect_run_info, git_state, package_versions

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"


def git(repo, *args):
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with one commit on branch main, as the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('v1')\n")
    (root / "old_name.py").write_text("x = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    monkeypatch.chdir(root)
    return root


def test_clean_repository(repo):
    state = git_state()
    assert state.root == str(repo.resolve())
    assert state.commit == git(repo, "rev-parse", "HEAD").strip()
    assert state.branch == "main"
    assert state.dirty is False
    assert state.dirty_files == []


def test_changed_renamed_and_untracked_files_make_it_dirty(repo):
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "mv", "old_name.py", "new_name.py")
    (repo / "notes with space.txt").write_text("")
    state = git_state()
    assert state.dirty is True
    assert sorted(state.dirty_files) == ["new_name.py", "notes with space.txt", "train.py"]
    assert state.dirty_file_count == 3


def test_the_list_of_dirty_files_is_capped(repo):
    for i in range(MAX_DIRTY_FILES + 10):
        (repo / f"scratch_{i}.txt").write_text("")
    state = git_state()
    assert len(state.dirty_files) == MAX_DIRTY_FILES
    assert state.dirty_file_count == MAX_DIRTY_FILES + 10


def test_detached_head_has_no_branch(repo):
    git(repo, "checkout", "-q", "--detach")
    assert git_state().branch is None
    assert git_state().commit == git(repo, "rev-parse", "HEAD").strip()


def test_outside_a_repository_it_is_null(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state() is None
    assert collect_run_info(["litlab"])["git"] is None
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_without_git_or_when_git_hangs_it_is_null(repo, monkeypatch):
    with monkeypatch.context() as no_git:
        no_git.setenv("PATH", str(repo / "no-such-bin"))
        assert git_state() is None

    def hangs(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(run_info.subprocess, "run", hangs)
    assert git_state() is None


def test_versions_come_from_the_installed_distributions():
    versions = package_versions()
    assert versions["python"] == platform.python_version()
    for name in ("torch", "lightning", "torchmetrics", "wandb", "litlab-core", "litlab-vision"):
        assert versions[name] == metadata.version(name)


@pytest.mark.slow
def test_reading_versions_imports_no_library():
    code = (
        "import sys; from litlab.app.run_info import package_versions; package_versions(); "
        "print(sorted({'torch', 'transformers', 'peft', 'datasets'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_run_records_it_beside_its_config_and_in_w_and_b(repo, data_root, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    # The experiment is committed; the run folder lands inside the repository, untracked, and
    # must not make the recorded state dirty.
    (repo / "mnist.yaml").write_text(MNIST_MLP.read_text())
    git(repo, "add", "mnist.yaml")
    git(repo, "commit", "-q", "-m", "experiment")
    args = [
        "fit",
        "-c",
        "mnist.yaml",
        "--model.network.init_args.hidden_features=[16]",
        "--data.init_args.num_workers",
        "0",
        "--trainer.max_steps",
        "1",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    main(args)
    (run_dir,) = (repo / "runs" / "mnist").iterdir()
    assert (run_dir / "config.yaml").is_file()
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["command"] == ["litlab", *args]
    assert info["git"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert info["git"]["dirty"] is False
    assert info["git"]["branch"] == "main"
    assert info["run_dir"] == str(run_dir.resolve())
    assert info["versions"]["lightning"] == metadata.version("lightning")
    assert info["hostname"]
    assert info["started_at"]

    wandb.teardown()  # the W&B service writes a finished run's log out by the time it stops
    (log_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    in_wandb = {key: json.loads(value) for key, value in config_updates(log_file)}
    assert in_wandb["litlab"] == info
    assert in_wandb["model"] == yaml.safe_load((run_dir / "config.yaml").read_text())["model"]
