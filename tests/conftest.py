"""Shared test set-up: offline W&B and Hugging Face, the real datasets from ../shared/data,
and a scratch working directory so runs never land in the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
if "LITLAB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["LITLAB_DATA"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder with the real datasets (MNIST, Tiny Shakespeare, SST-2); session-scoped, so
    module-scoped fixtures can use it too."""
    root = Path(os.environ.get("LITLAB_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        message = f"real datasets not found under {root}; set LITLAB_DATA=../shared/data"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: tiny models gain nothing from a second thread, and on
    a busy machine each small op would wait for it (generation got 300x slower under load).
    Use it for a whole file with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty directory (run folders and downloads go there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_run_dir_left_behind():
    """A LitlabCLI built in-process (not through main()) leaves its run folder in the
    environment for the DDP ranks it would launch; the next test must not write into it."""
    yield
    os.environ.pop("LITLAB_RUN_DIR", None)
