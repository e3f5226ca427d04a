"""Pretrained model files are found locally before the hub is asked."""

import sys
import types
from pathlib import Path

from litlab.nlp.pretrained import resolve_pretrained


def test_existing_folder_is_used_as_is(tmp_path):
    assert resolve_pretrained(str(tmp_path)) == str(tmp_path)


def test_offline_package_stands_in_for_the_hub_name(tmp_path, monkeypatch):
    package = types.ModuleType("gt_tiny_model_v1_5")
    package.get_model_path = lambda: tmp_path
    monkeypatch.setitem(sys.modules, "gt_tiny_model_v1_5", package)
    assert resolve_pretrained("some-org/Tiny-Model-v1.5") == str(tmp_path)


def test_real_minilm_package_is_found():
    path = resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model")
    assert (Path(path) / "config.json").is_file()


def test_unknown_name_goes_to_the_hub_unchanged():
    assert resolve_pretrained("openai-community/gpt2") == "openai-community/gpt2"
