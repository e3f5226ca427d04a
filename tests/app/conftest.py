"""What every in-process ``litlab`` command in these tests starts from."""

import sys

import pytest

from litlab.app.runs import RUN_DIR_ENV_VAR


@pytest.fixture
def cli_process(monkeypatch, in_tmp_dir):
    """A fresh working folder, the bare ``litlab`` command line, and no run folder inherited
    from an earlier command (ranks Lightning launches get theirs through the environment)."""
    monkeypatch.setattr(sys, "argv", ["litlab"])
    monkeypatch.delenv(RUN_DIR_ENV_VAR, raising=False)
