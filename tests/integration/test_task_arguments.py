"""Task's optimizer arguments are declared once, on Task: each domain task hands them on through
``**kwargs``, restating only those whose default it changes, and the config still offers them
all (jsonargparse follows ``**kwargs`` to Task's signature) with each task's defaults."""

from __future__ import annotations

import importlib
import inspect

import pytest
from jsonargparse import ArgumentParser

from litlab.core.task import Task

TASKS = {
    "litlab.vision.tasks.classification.ImageClassifier": {},
    "litlab.nlp.tasks.text_classification.TextClassifier": {},
    "litlab.nlp.tasks.language_model.LanguageModel": {
        "weight_decay": 0.1,
        "lr_scheduler_interval": "step",
    },
    "litlab.nlp.tasks.causal_lm.CausalLanguageModel": {"lr": 3e-4, "lr_scheduler_interval": "step"},
    "litlab.generative.tasks.vae.VAETask": {},
    "litlab.generative.tasks.diffusion.DiffusionModel": {
        "lr": 2e-4,
        "lr_scheduler_interval": "step",
    },
}
TASK_PARAMETERS = {
    name: parameter.default
    for name, parameter in inspect.signature(Task.__init__).parameters.items()
    if name != "self"
}


def _task_class(path: str) -> type[Task]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("path", TASKS)
def test_a_task_restates_only_the_optimizer_defaults_it_changes(path):
    parameters = inspect.signature(_task_class(path).__init__).parameters
    restated = {name: p.default for name, p in parameters.items() if name in TASK_PARAMETERS}
    assert restated == TASKS[path]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


@pytest.mark.parametrize("path", TASKS)
def test_the_config_offers_every_optimizer_argument_with_the_task_default(path):
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(_task_class(path), "task", skip={"network", "num_classes"})
    defaults = parser.get_defaults()["task"]
    for name, default in TASK_PARAMETERS.items():
        assert defaults[name] == TASKS[path].get(name, default), name
    config = parser.parse_args(["--task.lr", "0.25", "--task.decay_norm_and_bias", "true"])
    assert (config.task.lr, config.task.decay_norm_and_bias) == (0.25, True)
    with pytest.raises(Exception, match="lr"):
        parser.parse_args(["--task.lr", "-1"])
