"""The W&B backend: the sweep is created on the W&B server and ``wandb agent`` runs its trials.

litlab sends the file as it is, plus the command every agent runs::

    litlab fit -c <program> --runs_root=<runs_root>/sweeps/<name>/trials --model.lr=0.001 ...

(W&B fills ``${program}`` and ``${args}``), so any machine with a litlab checkout joins the
sweep with ``uv run wandb agent <entity>/<project>/<sweep id>`` from the checkout's root. Each
trial is an ordinary litlab run; its W&B run is the one the agent made for it (W&B's
``WANDB_RUN_ID``), and its run folder is named after that id.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litlab.app.sweeps.spec import SweepSpec
from litlab.app.wandb_login import DEFAULT_WANDB_HOST, OFFLINE_MODES, wandb_logged_in
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "litlab"  # the WandbLogger's


def wandb_available() -> bool:
    """A W&B login, and WANDB_MODE not asking for offline or disabled runs."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    return wandb_logged_in() and mode not in (*OFFLINE_MODES, "disabled")


def sweep_project(spec: SweepSpec) -> str:
    """The file's ``project:``, else ``WANDB_PROJECT``, else litlab's default project."""
    return spec.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


def sweep_entity(spec: SweepSpec) -> str | None:
    return spec.entity or os.environ.get("WANDB_ENTITY")


def wandb_sweep_config(spec: SweepSpec, trials_root: str) -> dict[str, Any]:
    """The sweep config litlab sends to W&B: the file's, named, with litlab's command."""
    config = dict(spec.raw)
    config["name"] = spec.name
    config["command"] = [
        "${env}",
        "litlab",
        "fit",
        "-c",
        "${program}",
        f"--runs_root={trials_root}",
        "${args}",
    ]
    return config


def agent_command(sweep_path: str, count: int | None) -> list[str]:
    """``wandb agent [--count N] <entity>/<project>/<id>``, with this environment's Python."""
    count_args = ["--count", str(count)] if count is not None else []
    return [sys.executable, "-m", "wandb", "agent", *count_args, sweep_path]


def sweep_url(entity: str, project: str, sweep_id: str) -> str:
    import wandb

    app = wandb.Settings(base_url=os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).app_url
    return f"{app.rstrip('/')}/{quote(entity)}/{quote(project)}/sweeps/{quote(sweep_id)}"


def default_entity() -> str | None:
    import wandb

    return wandb.Api().default_entity


def run_wandb_sweep(spec: SweepSpec, count: int | None, trials_root: str) -> str:
    """Create the sweep on W&B and run an agent here; return the sweep's path."""
    if not wandb_available():
        raise LitlabError(
            "--backend wandb needs a W&B login and WANDB_MODE not offline/disabled: run "
            "`wandb login` (or set WANDB_API_KEY), or sweep locally with --backend optuna"
        )
    import wandb

    project = sweep_project(spec)
    entity = sweep_entity(spec) or default_entity()
    if entity is None:
        raise LitlabError(
            "W&B names no default entity for this login: give the sweep's `entity:` in "
            f"{spec.path}, or set WANDB_ENTITY"
        )
    sweep_id = wandb.sweep(wandb_sweep_config(spec, trials_root), entity=entity, project=project)
    path = f"{entity}/{project}/{sweep_id}"
    log.info("W&B sweep %s: %s", spec.name, sweep_url(entity, project, sweep_id))
    log.info(
        "More agents, on this or other machines (from a litlab checkout's root, after "
        "uv sync):\n  uv run wandb agent %s",
        path,
    )
    env = dict(os.environ)
    # The agent runs `litlab` by name: this environment's must come first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    code = subprocess.call(agent_command(path, count), env=env)
    if code != 0:
        raise LitlabError(f"wandb agent {path} exited with code {code}")
    log.info(
        "The sweep's runs, table and parameter importances: %s",
        sweep_url(entity, project, sweep_id),
    )
    return path
