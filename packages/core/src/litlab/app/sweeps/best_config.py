"""``best.yaml``: the swept experiment's config with a trial's values written in, nested, so
``litlab fit -c best.yaml`` trains that trial again."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted command-line key in a nested config, as the parser reads it.

    ``model.lr`` lands in ``model.init_args.lr`` when ``model`` is a ``class_path`` node (the
    parser's shorthand); ``trainer.max_epochs`` in ``trainer.max_epochs``.
    """
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = _into_init_args(node, part)
        child = node.get(part)
        if not isinstance(child, dict):
            # A class given as a bare class path string, or nothing yet.
            child = {"class_path": child} if isinstance(child, str) and "." in child else {}
            node[part] = child
        node = child
    _into_init_args(node, leaf)[leaf] = value


def config_with_values(
    program_config: Mapping[str, Any], values: Mapping[str, Any], experiment: str
) -> dict[str, Any]:
    """The program's config with ``values`` set, named after the program's experiment (a
    config file's runs are otherwise named after the file: ``best``)."""
    config = copy.deepcopy(dict(program_config))
    for key, value in values.items():
        set_dotted(config, key, value)
    config.setdefault("experiment", experiment)
    return config


def write_config(
    path: Path,
    program: str,
    values: Mapping[str, Any],
    experiment: str,
    header: list[str],
) -> None:
    program_config = yaml.safe_load(Path(program).read_text()) or {}
    config = config_with_values(program_config, values, experiment)
    comments = "".join(f"# {line}\n" for line in header)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comments + yaml.safe_dump(config, sort_keys=False))


def _into_init_args(node: dict[str, Any], part: str) -> dict[str, Any]:
    if "class_path" in node and part not in ("class_path", "init_args", "dict_kwargs"):
        init_args = node.get("init_args")
        if not isinstance(init_args, dict):
            init_args = node["init_args"] = {}
        return init_args
    return node
