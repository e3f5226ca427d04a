"""Every experiment YAML runs one batch of fit, so a preset can never silently rot."""

import sys
from pathlib import Path

import pytest

from litlab.core.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted(
    path
    for path in (REPO_ROOT / "experiments").rglob("*.yaml")
    if not path.name.endswith("_sweep.yaml")
)


def test_there_are_experiments():
    assert EXPERIMENTS


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_experiment_runs_one_batch(config, data_root, in_tmp_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    main(["fit", "-c", str(config), "--trainer.fast_dev_run", "1"])
    assert not (in_tmp_dir / "runs").exists() or not any((in_tmp_dir / "runs").rglob("*.ckpt"))
