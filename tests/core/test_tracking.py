import logging

import pytest

from litlab.core.tracking import WandbLogger, resolve_wandb_mode, wandb_logged_in


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
