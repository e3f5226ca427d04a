"""litlab sync: finds the offline W&B runs under a runs folder and uploads the new ones."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from litlab.app import sync
from litlab.app.cli import main as litlab_main
from litlab.app.tracking import WandbLogger
from litlab.core.errors import LitlabError


class Tiny(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def offline_run(run_dir, run_id):
    """A run folder holding the offline W&B run of a two-step fit."""
    logger = WandbLogger(save_dir=str(run_dir), id=run_id, offline=True)
    trainer = Trainer(
        logger=logger,
        max_steps=2,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2))
    logger.finish()
    (run_path,) = run_dir.glob(f"wandb/offline-run-*-{run_id}")
    return run_path


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """Two runs of experiment `exp`, the older one already synced."""
    root = tmp_path_factory.mktemp("sync") / "runs"
    old = offline_run(root / "exp" / "20260101-000000-synced01", "synced01")
    offline_run(root / "exp" / "20260102-000000-pending1", "pending1")
    # What `wandb sync` leaves beside a log it uploaded.
    (old / "run-synced01.wandb.synced").write_text("")
    return root


@pytest.fixture
def fresh_runs(runs_root, tmp_path):
    """A copy of the runs, which a test may upload."""
    copy = tmp_path / "runs"
    subprocess.run(["cp", "-r", str(runs_root), str(copy)], check=True)
    return copy


@pytest.fixture
def logged_in(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)


class FakeWandbSync:
    """Stands in for the `wandb sync` process: marks the logs it is given synced, as wandb does
    (unless told to fail), and keeps the run folders of each call."""

    def __init__(self):
        self.calls, self.works = [], True

    def __call__(self, command, check=False):
        assert command[:4] == [sys.executable, "-m", "wandb", "sync"]
        self.calls.append(command[4:])
        for path in command[4:] if self.works else []:
            for log_file in Path(path).glob("*.wandb"):
                log_file.with_name(log_file.name + ".synced").write_text("")
        return subprocess.CompletedProcess(command, 0)


@pytest.fixture
def fake_wandb_sync(monkeypatch):
    fake = FakeWandbSync()
    monkeypatch.setattr(sync.subprocess, "run", fake)
    return fake


def run_names(paths):
    return [str(p).rsplit("-", 1)[-1] for p in paths]


def test_finds_every_offline_run_and_which_are_synced(runs_root):
    runs = sync.find_offline_runs(runs_root)
    assert run_names(run.path for run in runs) == ["synced01", "pending1"]
    assert [run.synced for run in runs] == [True, False]
    assert [f.name for f in runs[1].log_files] == ["run-pending1.wandb"]


def test_uploads_only_the_runs_not_synced_yet(fresh_runs, logged_in, fake_wandb_sync, caplog):
    with caplog.at_level(logging.INFO, logger="litlab"):
        sync.main([str(fresh_runs)])
    assert [run_names(paths) for paths in fake_wandb_sync.calls] == [["pending1"]]
    assert all(run.synced for run in sync.find_offline_runs(fresh_runs))
    assert "uploaded 1 run(s)" in caplog.text

    sync.main([str(fresh_runs)])  # nothing new: wandb is not called again
    assert len(fake_wandb_sync.calls) == 1


def test_dry_run_lists_and_uploads_nothing(runs_root, logged_in, fake_wandb_sync, caplog):
    with caplog.at_level(logging.INFO, logger="litlab"):
        sync.main([str(runs_root), "--dry-run"])
    assert fake_wandb_sync.calls == []
    assert "2 offline W&B run(s)" in caplog.text
    assert "1 to upload, 1 already uploaded" in caplog.text
    pending = [
        r for r in caplog.records if "to upload" in r.getMessage() and "pending1" in r.getMessage()
    ]
    assert len(pending) == 1


def test_without_a_login_it_says_so_and_uploads_nothing(
    runs_root, fake_wandb_sync, monkeypatch, tmp_path
):
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setattr(sys, "argv", ["litlab"])
    with pytest.raises(SystemExit) as exit_info:
        litlab_main(["sync", str(runs_root)])
    message = str(exit_info.value.code)
    assert message.startswith("litlab sync: error: no W&B login")
    assert "wandb login" in message
    assert fake_wandb_sync.calls == []


def test_a_failed_upload_is_reported_and_the_run_kept(fresh_runs, logged_in, fake_wandb_sync):
    fake_wandb_sync.works = False
    with pytest.raises(LitlabError, match=r"1 of 1 run\(s\) were not uploaded"):
        sync.main([str(fresh_runs)])
    assert [run.synced for run in sync.find_offline_runs(fresh_runs)] == [True, False]


def test_a_missing_runs_folder_is_a_user_error(tmp_path):
    with pytest.raises(LitlabError, match="runs folder not found"):
        sync.main([str(tmp_path / "nope")])


@pytest.mark.parametrize(
    ("uv_depth", "command"), [("1", "uv run litlab sync"), (None, "litlab sync")]
)
def test_its_hints_are_in_the_form_litlab_was_launched(tmp_path, monkeypatch, uv_depth, command):
    if uv_depth is None:
        monkeypatch.delenv("UV_RUN_RECURSION_DEPTH", raising=False)
    else:
        monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", uv_depth)
    with pytest.raises(LitlabError) as raised:
        sync.main([str(tmp_path / "nope")])
    assert str(raised.value).endswith(f"e.g. {command} runs")
