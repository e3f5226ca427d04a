"""Installing one domain package alone into an empty virtual environment brings litlab-core and
that package with their own dependencies, and nothing from the other domains: litlab-vision
without transformers, litlab-nlp without torchvision, litlab-generative with litlab-vision (its
image data) but without litlab-nlp; none brings optuna, SQLAlchemy or matplotlib, litlab-core's
`sweep` extra, which adds them.

Versions are pinned to uv.lock through a constraints file exported with `uv export`, so the
install comes from uv's cache (PyPI is only asked for index metadata it does not hold yet).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run inside the fresh venv: what is importable there, and where litlab.core and the domain
# package come from.
PROBE = """
import importlib, importlib.util, json, sys
import litlab.core
domain = importlib.import_module(sys.argv[1])
importlib.import_module(sys.argv[2])
# What `litlab fit` runs, the sweep trial callback included, needs no sweep extra.
importlib.import_module("litlab.app.cli")
print(json.dumps({
    "core": litlab.core.__file__,
    "domain": domain.__file__,
    "present": [n for n in sys.argv[3:] if importlib.util.find_spec(n) is not None],
}))
"""

# litlab-core's `sweep` extra and what it brings (SQLAlchemy: Optuna's study storage).
SWEEP_EXTRA = ["optuna", "sqlalchemy", "matplotlib"]
SWEEP_EXTRA_MISSING = (
    "litlab sweep: error: litlab sweep needs optuna and matplotlib for the Optuna backend: "
    "install them with pip install 'litlab-core[sweep]' (uv sync installs them)"
)

# package folder -> (its module, one of its modules that needs its own dependencies, modules
# that must not be importable, the litlab distributions the install must bring).
PACKAGES = {
    "vision": (
        "litlab.vision",
        "litlab.vision.models.mlp",
        ["litlab.nlp", "litlab.generative", "transformers", "peft", "datasets", *SWEEP_EXTRA],
        ["litlab-core", "litlab-vision"],
    ),
    "nlp": (
        "litlab.nlp",
        "litlab.nlp.adapters",
        ["litlab.vision", "litlab.generative", "torchvision", *SWEEP_EXTRA],
        ["litlab-core", "litlab-nlp"],
    ),
    "generative": (
        "litlab.generative",
        "litlab.generative.tasks.diffusion",
        ["litlab.nlp", "transformers", "peft", "datasets", *SWEEP_EXTRA],
        ["litlab-core", "litlab-generative", "litlab-vision"],
    ),
}

# Two ways in, both must give the same set of distributions:
# - "readme": `uv pip install packages/vision`, the command the README gives. uv finds the
#   workspace around the member and takes litlab-core from the root's `[tool.uv.sources]`
#   (`workspace = true`), which installs it *editable*, pointing at packages/core/src.
#   (Naming packages/core as well changes nothing: the workspace source still wins.)
# - "wheels": `--no-sources packages/core packages/vision` builds both as ordinary wheels, so
#   the core wheel itself must carry the CLI, the entry point and the `litlab` namespace.
#   `--no-sources packages/vision` alone fails: litlab-core is not on PyPI.
INSTALL_ARGS = {
    "readme": lambda package: [f"packages/{package}"],
    "wheels": lambda package: ["--no-sources", "packages/core", f"packages/{package}"],
}
CASES = [("vision", "readme"), ("vision", "wheels"), ("nlp", "readme"), ("generative", "readme")]


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=cwd)
    except subprocess.CalledProcessError as error:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {error.returncode}\n"
            f"stdout:\n{error.stdout}\nstderr:\n{error.stderr}"
        )


@pytest.mark.slow
@pytest.mark.parametrize(("package", "mode"), CASES)
def test_domain_package_installs_alone(tmp_path: Path, package: str, mode: str) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")

    # Keep the outer environment (pytest's venv, a `uv run`) from leaking into the new one.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    constraints = tmp_path / "constraints.txt"

    _run([uv, "venv", str(venv), "--python", sys.executable], env=env, cwd=tmp_path)
    _run(
        [
            uv,
            "export",
            "--frozen",
            "--no-hashes",
            "--no-emit-workspace",
            "--no-header",
            "--all-groups",
            "-o",
            str(constraints),
        ],
        env=env,
        cwd=REPO_ROOT,
    )

    def pip_install(*args: str) -> subprocess.CompletedProcess[str]:
        """Into the new environment, at the versions uv.lock pins."""
        command = [uv, "pip", "install", "--python", str(python), "-c", str(constraints), *args]
        return _run(command, env=env, cwd=REPO_ROOT)

    install = pip_install(*INSTALL_ARGS[mode](package))

    module, needs_dependencies, absent, expected_dists = PACKAGES[package]
    probe = _run(
        [str(python), "-c", PROBE, module, needs_dependencies, *absent], env=env, cwd=tmp_path
    )
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["present"] == [], f"should not be importable: {found['present']}\n{probe.stderr}"
    assert Path(found["domain"]).resolve().is_relative_to(venv.resolve()), found
    if mode == "wheels":
        assert Path(found["core"]).resolve().is_relative_to(venv.resolve()), found

    listed = _run(
        [uv, "pip", "list", "--python", str(python), "--format", "json"], env=env, cwd=tmp_path
    )
    litlab_dists = sorted(d["name"] for d in json.loads(listed.stdout) if "litlab" in d["name"])
    assert litlab_dists == expected_dists, f"{litlab_dists}\ninstall stderr:\n{install.stderr}"

    litlab = venv / "bin" / "litlab"
    assert litlab.is_file(), f"no console script at {litlab}\ninstall stderr:\n{install.stderr}"
    help_run = _run([str(litlab), "--help"], env=env, cwd=tmp_path)
    for subcommand in ("fit", "validate", "test", "predict"):
        assert subcommand in help_run.stdout, help_run.stdout + help_run.stderr

    if mode == "wheels":
        # Without the extra, the Optuna backend stops before any trial, in one line.
        sweep = subprocess.run(
            [
                str(litlab),
                "sweep",
                "experiments/vision/mnist_mlp.sweep.yaml",
                "--backend",
                "optuna",
                "--runs_root",
                str(tmp_path / "runs"),
            ],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        assert sweep.returncode == 1, sweep.stdout + sweep.stderr
        assert sweep.stderr.strip() == SWEEP_EXTRA_MISSING, sweep.stderr

        # `pip install 'litlab-core[sweep]'` (docs/sweeps.md), into this environment: a new
        # one would cost another install of torch.
        pip_install("--no-sources", "packages/core[sweep]")
        probe = _run(
            [str(python), "-c", PROBE, module, needs_dependencies, *SWEEP_EXTRA],
            env=env,
            cwd=tmp_path,
        )
        found = json.loads(probe.stdout.strip().splitlines()[-1])
        assert found["present"] == SWEEP_EXTRA, probe.stderr
