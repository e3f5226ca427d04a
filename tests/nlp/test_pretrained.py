"""Pretrained model files are found locally before the hub is asked."""

import sys
import types
from pathlib import Path

import pytest

from litlab.core.errors import LitlabError
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


def test_a_missing_run_folder_names_the_experiment_that_writes_it(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH", raising=False)
    with pytest.raises(LitlabError) as raised:
        resolve_pretrained("runs/causal_lm_pretrain_gone/model")
    assert "runs/causal_lm_pretrain_gone/model is not a folder" in str(raised.value)
    assert "the causal_lm_pretrain_gone experiment publishes" in str(raised.value)


def test_the_lora_preset_before_its_base_model_says_which_run_comes_first(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    if Path("runs/causal_lm_pretrain/model").is_dir():
        pytest.skip("a pre-trained base model is in this checkout's runs/")
    with pytest.raises(LitlabError) as raised:
        resolve_pretrained("runs/causal_lm_pretrain/model")
    assert str(raised.value).endswith(
        "run `uv run litlab fit -c experiments/nlp/causal_lm_pretrain.yaml` first."
    )


def test_another_missing_path_is_left_to_from_pretrained(tmp_path):
    missing = str(tmp_path / "nothing" / "here")
    assert resolve_pretrained(missing) == missing
