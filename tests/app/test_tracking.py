import logging
import subprocess
from pathlib import Path

import pytest
import torch
import wandb
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from wandb_records import read_records
from worse_every_validation import WorseEveryValidation, loader

from litlab.app.tracking import WandbLogger
from litlab.app.wandb_login import resolve_wandb_mode, wandb_logged_in
from litlab.core.callbacks import LastCheckpoint


@pytest.fixture
def no_login(monkeypatch, tmp_path):
    """No API key in the environment and an empty netrc."""
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return tmp_path / "netrc"


def test_no_credentials_means_offline(no_login):
    assert not wandb_logged_in()
    assert resolve_wandb_mode(None) == "offline"


def test_api_key_means_online(no_login, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode(None) == "online"


def test_netrc_entry_for_the_configured_host_means_online(no_login, monkeypatch):
    no_login.write_text("machine wandb.example.org login user password " + "k" * 40 + "\n")
    assert not wandb_logged_in()  # the entry is for another host than api.wandb.ai
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert resolve_wandb_mode(None) == "online"


@pytest.mark.parametrize("mode", ["offline", "online", "disabled"])
def test_wandb_mode_variable_wins(no_login, monkeypatch, mode):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", mode)
    assert resolve_wandb_mode(None) == mode


def test_explicit_offline_flag_wins(no_login, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_wandb_mode(True) == "offline"
    assert resolve_wandb_mode(False) == "online"


def test_logger_says_once_that_it_goes_offline(no_login, caplog):
    with caplog.at_level(logging.INFO, logger="litlab"):
        logger = WandbLogger(log_model=True)
    offline_notes = [r for r in caplog.records if "no login found" in r.getMessage()]
    assert len(offline_notes) == 1
    assert logger._wandb_init["mode"] == "offline"
    assert logger._log_model is False  # checkpoints cannot be uploaded offline


def test_bind_run_fills_only_what_the_config_left_unset(no_login, tmp_path):
    logger = WandbLogger(name="my-name")
    logger.bind_run(save_dir=str(tmp_path), name="exp", run_id="abcd1234", job_type="fit")
    assert logger.save_dir == str(tmp_path)
    assert logger._wandb_init["name"] == "my-name"
    assert logger._wandb_init["id"] == "abcd1234"
    assert logger._wandb_init["job_type"] == "fit"


# ----- a tiny real training run


def fit(tmp_path, logger, max_epochs=3):
    """4 steps an epoch, a validation after each: best.ckpt at step 4, last.ckpt at step 12."""
    checkpoints = tmp_path / "checkpoints"
    trainer = Trainer(
        callbacks=[
            ModelCheckpoint(checkpoints, filename="best", monitor="val/loss", save_top_k=1),
            LastCheckpoint(checkpoints),
        ],
        logger=logger,
        max_epochs=max_epochs,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = WorseEveryValidation()
    trainer.fit(model, loader(), loader())
    return model


@pytest.fixture
def offline_run(tmp_path):
    run = wandb.init(mode="offline", dir=tmp_path, project="litlab-test")
    yield run
    run.finish()


class RecordedArtifact:
    """Stands in for wandb.Artifact and keeps what would be uploaded."""

    def __init__(self, name, type, metadata=None):
        self.name, self.type, self.metadata, self.files = name, type, metadata, []

    def add_file(self, local_path, name=None, policy="mutable"):
        self.files.append((Path(local_path), name))


def fit_recording_uploads(tmp_path, monkeypatch, offline_run, log_model):
    """(file, name in the artifact, aliases, training step in the file) of every upload."""
    uploads = []

    def log_artifact(artifact, aliases=None, **kwargs):
        assert artifact.type == "model"
        assert artifact.name == f"model-{offline_run.id}"
        ((path, name),) = artifact.files
        step = torch.load(path, weights_only=False)["global_step"]
        uploads.append((path.name, name, aliases, step))

    monkeypatch.setattr(wandb, "Artifact", RecordedArtifact)
    monkeypatch.setattr(offline_run, "log_artifact", log_artifact)
    # Online as far as litlab knows (so log_model stays on); the W&B run is an offline one.
    logger = WandbLogger(offline=False, log_model=log_model, experiment=offline_run)
    fit(tmp_path, logger)
    return uploads


def test_online_runs_upload_best_and_last_once_when_training_ends(
    tmp_path, monkeypatch, offline_run
):
    uploads = fit_recording_uploads(tmp_path, monkeypatch, offline_run, log_model=True)
    # last.ckpt goes last: W&B moves "latest" to the newest version anyway.
    assert uploads == [
        ("best.ckpt", "model.ckpt", ["best"], 4),
        ("last.ckpt", "model.ckpt", ["latest", "last"], 12),
    ]


def test_log_model_all_uploads_every_checkpoint_as_it_is_written(
    tmp_path, monkeypatch, offline_run
):
    uploads = fit_recording_uploads(tmp_path, monkeypatch, offline_run, log_model="all")
    assert uploads == [
        ("best.ckpt", "model.ckpt", ["best"], 4),
        ("last.ckpt", "model.ckpt", ["latest", "last"], 4),
        ("last.ckpt", "model.ckpt", ["latest", "last"], 8),
        ("last.ckpt", "model.ckpt", ["latest", "last"], 12),
    ]


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_no_uploads_when_nothing_reaches_a_server(no_login, monkeypatch, mode):
    monkeypatch.setenv("WANDB_MODE", mode)
    assert WandbLogger()._log_model is False
    monkeypatch.setenv("WANDB_MODE", "online")
    assert WandbLogger()._log_model is True  # the default


def test_watch_hands_wandb_the_model_with_the_chosen_histograms(tmp_path, monkeypatch):
    logger = WandbLogger(save_dir=str(tmp_path), watch="all", watch_log_freq=7)
    calls = []
    monkeypatch.setattr(logger.experiment, "watch", lambda *a, **k: calls.append((a, k)))
    model = fit(tmp_path, logger, max_epochs=1)
    logger.finish()
    assert calls == [((model,), {"log": "all", "log_freq": 7, "log_graph": False})]


def test_watched_gradients_reach_the_run_log(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), id="watch001", watch="gradients", watch_log_freq=1)
    fit(tmp_path, logger, max_epochs=1)
    logger.finish()
    wandb.teardown()  # the W&B service writes a finished run's log out by the time it stops
    (log_file,) = tmp_path.glob("wandb/offline-run-*/run-watch001.wandb")
    keys = {
        item.key or item.nested_key[0]
        for record in read_records(log_file)
        if record.WhichOneof("record_type") == "history"
        for item in record.history.item
    }
    assert {"gradients/layer.weight", "gradients/layer.bias"} <= keys
    assert not any(key.startswith("parameters/") for key in keys)


def test_no_watch_by_default(tmp_path, monkeypatch):
    logger = WandbLogger(save_dir=str(tmp_path))
    monkeypatch.setattr(logger.experiment, "watch", lambda *a, **k: pytest.fail("watched"))
    fit(tmp_path, logger, max_epochs=1)
    logger.finish()


def test_bind_run_adds_tags_after_the_configured_ones(no_login, tmp_path):
    logger = WandbLogger(tags=["baseline", "vision"])
    logger.bind_run(str(tmp_path), "exp", "abcd1234", "fit", tags=["vision", "fit"])
    assert logger._wandb_init["tags"] == ["baseline", "vision", "fit"]


# ----- W&B's own warnings and git lookup


def record_wandb_warnings(monkeypatch):
    warnings = []
    monkeypatch.setattr(wandb, "termwarn", lambda message, *a, **k: warnings.append(message))
    return warnings


def test_wandb_git_lookup_starts_from_the_working_directory_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    warnings = record_wandb_warnings(monkeypatch)
    # The run folder does not exist yet, and lies outside the repository.
    logger = WandbLogger(save_dir=str(tmp_path / "runs" / "exp" / "run"), id="gitroot1")
    assert logger.experiment.settings.git_root == str(repo.resolve())
    logger.finish()
    assert "anonymous" not in logger._wandb_init  # Lightning's None makes wandb warn
    assert warnings == []


def test_outside_a_repository_wandb_does_not_look_for_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    warnings = record_wandb_warnings(monkeypatch)
    logger = WandbLogger(save_dir=str(tmp_path / "runs" / "run"), id="nogit001")
    assert logger.experiment.settings.disable_git is True
    logger.finish()
    assert warnings == []


# ----- W&B down or refusing: the run goes on offline


@pytest.mark.parametrize("api_key", ["x" * 40, None], ids=["server-unreachable", "no-login"])
def test_an_online_run_that_cannot_start_goes_offline(
    no_login, tmp_path, monkeypatch, caplog, api_key
):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    if api_key:
        monkeypatch.setenv("WANDB_API_KEY", api_key)
    logger = WandbLogger(save_dir=str(tmp_path), id="fallbck1", settings={"init_timeout": 1})
    with caplog.at_level(logging.INFO, logger="litlab"):
        run = logger.experiment
        run.log({"x": 1.0})
        logger.finish()
    assert run.settings.mode == "offline"
    assert logger._log_model is False
    assert any("could not start" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.glob("wandb/offline-run-*-fallbck1/run-fallbck1.wandb"))


def test_a_bare_look_at_the_run_does_not_start_it(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), id="lazy0001")
    _ = logger.experiment  # what Lightning does before the DataModule's setup
    assert not (tmp_path / "wandb").exists()
    run = logger.experiment
    run.log({"x": 1.0})  # the first real use starts it
    assert logger._experiment is not None
    assert run.id == "lazy0001"
    logger.finish()
    assert list(tmp_path.glob("wandb/offline-run-*-lazy0001"))


@pytest.mark.parametrize("discard", [False, True])
def test_the_offline_hint_is_litlabs_own_in_the_launch_form(
    tmp_path, monkeypatch, caplog, capfd, discard
):
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    logger = WandbLogger(save_dir=str(tmp_path), id="hint0001")
    with caplog.at_level(logging.INFO, logger="litlab"):
        logger.experiment.log({"x": 1.0})
        logger.finish(discard=discard)
    hints = [m for m in caplog.messages if "Upload it with" in m]
    if discard:
        assert hints == []
    else:
        (hint,) = hints
        assert f"uv run wandb sync {tmp_path}/wandb/offline-run-*-hint0001" in hint
        assert "(uv run litlab sync RUNS_ROOT uploads" in hint
    # W&B's own lines (its header, its footer's `wandb sync`) are left out.
    assert "wandb:" not in capfd.readouterr().err
