"""The W&B backend without a server: the sweep config litlab sends, the agent it starts and the
command W&B's agent builds for a trial (which litlab's parser must read), and the run id a
trial takes from the agent."""

import io
import logging
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import wandb
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from litlab.app.cli import main
from litlab.app.runs import new_run_id
from litlab.app.sweeps import wandb_backend
from litlab.app.sweeps.spec import load_sweep
from litlab.app.sweeps.wandb_backend import (
    agent_command,
    run_wandb_sweep,
    wandb_available,
    wandb_sweep_config,
)
from litlab.core.errors import LitlabError

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP_SWEEP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.sweep.yaml"


@pytest.fixture
def spec(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # program: is relative to the checkout's root
    return load_sweep(MNIST_MLP_SWEEP)


@pytest.fixture
def logged_in(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for name in ("WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)


def test_the_sweep_config_is_the_file_plus_litlabs_command(spec):
    config = wandb_sweep_config(spec, "runs/sweeps/mnist_mlp/trials")
    raw = yaml.safe_load(MNIST_MLP_SWEEP.read_text())
    assert {k: v for k, v in config.items() if k not in ("name", "command")} == raw
    assert config["name"] == "mnist_mlp"
    assert config["command"] == [
        "${env}",
        "litlab",
        "fit",
        "-c",
        "${program}",
        "--runs_root=runs/sweeps/mnist_mlp/trials",
        "${args}",
    ]


def test_the_agents_trial_command_parses(spec, monkeypatch, tmp_path):
    """W&B's agent writes each value as --key=str(value); litlab reads them all."""
    args = {
        "model.lr": {"value": 0.00123},
        "data.batch_size": {"value": 64},
        "model.network.init_args.hidden_features": {"value": [64, 32]},
        "model.decay_norm_and_bias": {"value": True},
    }
    flags = create_sweep_command_args({"args": args})["args"]
    assert flags[2] == "--model.network.init_args.hidden_features=[64, 32]"
    assert flags[3] == "--model.decay_norm_and_bias=True"
    monkeypatch.setattr(sys, "argv", ["litlab"])
    output = io.StringIO()
    with redirect_stdout(output), pytest.raises(SystemExit):
        main(["fit", "-c", spec.program, *flags, "--print_config"])
    config = yaml.safe_load(output.getvalue())
    assert config["model"]["init_args"]["lr"] == pytest.approx(0.00123)
    assert config["data"]["init_args"]["batch_size"] == 64
    assert config["model"]["init_args"]["network"]["init_args"]["hidden_features"] == [64, 32]
    assert config["model"]["init_args"]["decay_norm_and_bias"] is True


def test_run_creates_the_sweep_and_starts_an_agent(spec, logged_in, monkeypatch, caplog):
    sent, started = {}, {}

    def fake_sweep(config, entity=None, project=None):
        sent.update(config=config, entity=entity, project=project)
        return "abc123"

    def fake_call(command, env):
        started.update(command=command, env=env)
        return 0

    monkeypatch.setattr(wandb, "sweep", fake_sweep)
    monkeypatch.setattr(wandb_backend, "default_entity", lambda: "my-team")
    monkeypatch.setattr(wandb_backend.subprocess, "call", fake_call)
    with caplog.at_level(logging.INFO, logger="litlab"):
        path = run_wandb_sweep(spec, count=5, trials_root="runs/sweeps/mnist_mlp/trials")

    assert path == "my-team/litlab/abc123"
    assert (sent["entity"], sent["project"]) == ("my-team", "litlab")
    assert sent["config"]["command"][-2] == "--runs_root=runs/sweeps/mnist_mlp/trials"
    assert started["command"] == agent_command(path, 5)
    assert started["command"][1:] == ["-m", "wandb", "agent", "--count", "5", path]
    assert started["env"]["PATH"].startswith(str(Path(sys.executable).parent))
    said = caplog.text
    assert "/my-team/litlab/sweeps/abc123" in said  # the sweep's page
    assert "uv run wandb agent my-team/litlab/abc123" in said


def test_a_login_without_an_entity_is_told_where_to_name_one(spec, logged_in, monkeypatch):
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.setattr(wandb_backend, "default_entity", lambda: None)
    monkeypatch.setattr(wandb, "sweep", lambda *args, **kwargs: pytest.fail("no sweep made"))
    with pytest.raises(LitlabError, match=r"no default entity.*entity:.*WANDB_ENTITY"):
        run_wandb_sweep(spec, count=1, trials_root="t")


def test_file_project_and_entity_win(spec, logged_in, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    assert wandb_backend.sweep_project(spec) == "from-env"
    named = tmp_path / "named.sweep.yaml"
    named.write_text(MNIST_MLP_SWEEP.read_text() + "project: from-file\nentity: lab\n")
    named_spec = load_sweep(named)
    assert wandb_backend.sweep_project(named_spec) == "from-file"
    assert wandb_backend.sweep_entity(named_spec) == "lab"


def test_no_login_means_a_clear_error(spec, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert not wandb_available()
    with pytest.raises(LitlabError, match=r"wandb login.*or sweep locally with --backend optuna"):
        run_wandb_sweep(spec, count=1, trials_root="t")


def test_offline_mode_means_no_wandb_backend_by_default(logged_in, monkeypatch):
    assert wandb_available()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert not wandb_available()


def test_a_trial_under_the_agent_takes_the_agents_run_id(monkeypatch):
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun")
    assert new_run_id() != "agentrun"  # WANDB_RUN_ID alone is not a sweep
    monkeypatch.setenv("WANDB_SWEEP_ID", "sw33p")
    assert new_run_id() == "agentrun"
