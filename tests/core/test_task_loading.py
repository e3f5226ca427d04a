"""litlab.core.checkpoints.task_loading: a checkpoint's task by the class path it records, and
what it says when that class is missing or no task. Loading a real classifier is tested in
tests/generative/test_classifier_features.py."""

from pathlib import Path

import pytest

from litlab.core.checkpoints.class_import import import_class
from litlab.core.checkpoints.task_loading import load_task
from litlab.core.errors import LitlabError


def checkpoint_naming(class_path: str) -> dict:
    return {"hyper_parameters": {"_class_path": class_path}}


def test_a_checkpoint_without_a_class_path_says_how_to_save_one() -> None:
    with pytest.raises(LitlabError, match=r"no '_class_path'.*: run litlab fit"):
        load_task(Path("bare.ckpt"), {"hyper_parameters": {}}, how_to_save="run litlab fit")


def test_the_named_class_must_import_and_be_a_task() -> None:
    with pytest.raises(LitlabError, match=r"x\.ckpt names litlab\.nowhere\.Task, which cannot"):
        load_task(Path("x.ckpt"), checkpoint_naming("litlab.nowhere.Task"), how_to_save="")
    with pytest.raises(LitlabError, match=r"torch\.nn\.Linear \(named by x\.ckpt\) is not a"):
        load_task(Path("x.ckpt"), checkpoint_naming("torch.nn.Linear"), how_to_save="")


def test_import_class_gives_what_the_path_names() -> None:
    assert import_class("litlab.core.errors.LitlabError", "config.yaml") is LitlabError
    with pytest.raises(LitlabError, match=r"config\.yaml names litlab\.core\.errors\.Nope"):
        import_class("litlab.core.errors.Nope", "config.yaml")
