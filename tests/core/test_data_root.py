from pathlib import Path

import pytest

from litlab.core.data_root import DATA_ENV_VAR, resolve_data_dir
from litlab.core.errors import LitlabError


def test_explicit_dir_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "from_env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_environment_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert resolve_data_dir(None) == tmp_path


def test_default_is_data_in_working_dir(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    assert resolve_data_dir(None) == Path("data")


def test_a_file_is_not_a_data_root(monkeypatch, tmp_path):
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    monkeypatch.setenv(DATA_ENV_VAR, str(not_a_dir))
    with pytest.raises(LitlabError, match=r"not a directory.*LITLAB_DATA"):
        resolve_data_dir(None)
