"""`litlab sweep`'s command line: the default backend, the number of trials, options that
belong to one backend, and a --help that imports nothing heavy."""

import subprocess
import sys
from pathlib import Path

import pytest

from litlab.app.cli import main
from litlab.app.sweeps import wandb_backend
from litlab.app.sweeps.command import _count
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import load_sweep
from litlab.core.errors import LitlabError


@pytest.fixture
def sweep_file(in_tmp_dir):
    (in_tmp_dir / "exp.yaml").write_text("{}\n")

    def sweep_file(method: str = "random", extra: str = "") -> str:
        (in_tmp_dir / "s.sweep.yaml").write_text(
            f"program: exp.yaml\nmethod: {method}\nmetric: {{name: val/loss}}\n"
            f"parameters:\n  a: {{values: [1, 2, 3]}}\n  b: {{values: [x, y]}}\n{extra}"
        )
        return str(in_tmp_dir / "s.sweep.yaml")

    return sweep_file


def sweep_error(*args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *args])
    return str(exit_info.value.code)


def test_how_many_trials(sweep_file):
    grid = load_sweep(sweep_file("grid"))
    assert _count(None, grid, OptunaSpace(grid)) == 6  # the whole grid
    assert _count(4, grid, OptunaSpace(grid)) == 4
    assert _count(50, grid, OptunaSpace(grid)) == 6  # a grid has no more
    capped = load_sweep(sweep_file(extra="run_cap: 5\n"))
    assert _count(None, capped, OptunaSpace(capped)) == 5
    assert _count(9, capped, OptunaSpace(capped)) == 5
    endless = load_sweep(sweep_file())
    with pytest.raises(LitlabError, match=r"how many trials\? Give --count N"):
        _count(None, endless, OptunaSpace(endless))


def test_default_backend_follows_the_wandb_login(sweep_file, monkeypatch):
    monkeypatch.setattr(wandb_backend, "wandb_available", lambda: False)
    message = sweep_error(sweep_file(), "--summary", "--runs_root", "runs")
    assert "litlab sweep: error: no study named s in sqlite:///" in message  # Optuna's
    monkeypatch.setattr(wandb_backend, "wandb_available", lambda: True)
    message = sweep_error(sweep_file(), "--summary")
    assert message.startswith(
        "litlab sweep: error: --summary, --storage and --workers are for --backend optuna"
    )


def test_optuna_options_with_the_wandb_backend(sweep_file):
    message = sweep_error(sweep_file(), "--backend", "wandb", "--workers", "2")
    assert "--workers are for --backend optuna" in message
    assert "wandb agent" in message


@pytest.mark.parametrize("missing", ["optuna", "matplotlib"])
def test_the_optuna_backend_without_the_sweep_extra_says_how_to_install_it(
    sweep_file, monkeypatch, missing
):
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    assert sweep_error(sweep_file(), "--backend", "optuna", "--count", "1") == (
        "litlab sweep: error: litlab sweep needs optuna and matplotlib for the Optuna backend: "
        "install them with pip install 'litlab-core[sweep]' (uv sync installs them)"
    )
    assert not (Path("runs") / "sweeps").exists()


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from litlab.app.sweeps.command import build_parser; "
        "build_parser().format_help(); "
        "print(sorted(m for m in ('optuna', 'torch', 'wandb', 'lightning') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_summary_before_any_sweep_writes_nothing(sweep_file, in_tmp_dir):
    message = sweep_error(sweep_file(), "--backend", "optuna", "--summary")
    assert "no study named s in sqlite:///" in message
    assert "run the sweep first" in message
    assert not (in_tmp_dir / "runs").exists()
