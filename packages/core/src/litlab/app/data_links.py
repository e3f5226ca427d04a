"""How what the data knows reaches the task: LightningCLI links from the DataModule's
:class:`~litlab.core.data_facts.DataFacts` to the task's and the network's constructor
arguments, so an experiment config states ``num_classes`` (the image shape, the vocabulary
size) nowhere: the data says it, once.

Each link is applied when the classes are built (``apply_on="instantiate"``: the DataModule
first, then the task with the value). A link whose target the chosen class does not take
(``LanguageModel`` has no ``num_classes``, ``CifarResNet`` no ``image_size``) is skipped.

What a config may still state at a link target:

- nothing (the usual case): the data's value;
- the data's value: accepted (a run's saved ``config.yaml`` from before these links did);
- the parameter's own default (``SmallCNN(num_classes=10)``) where the data says otherwise:
  the data's value (a default is not a choice; the network would not fit the data);
- ``null`` where the parameter's default is ``None`` (an optional feature left off, such as the
  class conditioning of ``UNet.num_classes``): kept;
- any other value: an error that names the key, both values and the fix; except a
  ``vocab_size``, which is kept: the data's may be a cap (a word-level tokenizer learns at most
  that many words), and the tasks refuse, at setup, a network smaller than the tokenizer.

So an explicit value is never silently replaced. Built from Python, a task and its network
take every value as given.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from litlab.core.checkpoints.class_import import import_class
from litlab.core.data_facts import data_facts_of
from litlab.core.errors import LitlabError

# Where the task's network sits in the config: the one line to change when it is renamed.
TASK = "model"
NETWORK = f"{TASK}.init_args.network"

# (fact of DataFacts, the constructor argument that takes it). A network's block_size is not
# here: its context may rightly be longer than the data's blocks, so a config states it.
DATA_LINKS: tuple[tuple[str, str], ...] = (
    ("num_classes", f"{TASK}.init_args.num_classes"),
    ("num_classes", f"{NETWORK}.init_args.num_classes"),
    ("num_classes", f"{NETWORK}.init_args.num_labels"),
    ("in_channels", f"{NETWORK}.init_args.in_channels"),
    ("image_size", f"{NETWORK}.init_args.image_size"),
    ("in_features", f"{NETWORK}.init_args.in_features"),
    ("image_shape", f"{NETWORK}.init_args.image_shape"),
    ("vocab_size", f"{NETWORK}.init_args.vocab_size"),
)

# Facts where a value the config states is kept (every other one must match the data's).
CONFIG_DECIDES = frozenset({"vocab_size"})

REQUIRED = inspect.Parameter.empty


class DataLinkError(LitlabError, ValueError):
    """A config value that contradicts what the data knows, or that nobody gives."""


@dataclass(frozen=True)
class Stated:
    """What the parsed config holds at a link target, and the parameter's default there."""

    value: Any
    default: Any  # REQUIRED for a parameter without one
    owner: str  # the class that takes it


def add_data_links(parser: LightningArgumentParser, stated: dict[str, Stated]) -> None:
    """Adds every link of :data:`DATA_LINKS` to ``parser``; each reads what the config stated
    at its target from ``stated`` (filled by :func:`record_stated` before instantiation)."""
    for fact, target in DATA_LINKS:
        parser.link_arguments(
            "data",
            target,
            compute_fn=_link_value(fact, target, stated),
            apply_on="instantiate",
        )


def record_stated(config: Namespace, stated: dict[str, Stated]) -> None:
    """What ``config`` (parsed, not yet built) holds at each link target whose class takes
    that parameter."""
    stated.clear()
    for _, target in DATA_LINKS:
        owner_key, name = target.rsplit(".init_args.", 1)
        owner = config.get(owner_key)
        class_path = owner.get("class_path") if isinstance(owner, Namespace) else None
        if not isinstance(class_path, str):
            continue
        parameter = _parameters(class_path).get(name)
        if parameter is None:
            continue
        init_args = owner.get("init_args")
        value = init_args.get(name) if isinstance(init_args, Namespace) else None
        stated[target] = Stated(value, parameter.default, class_path.rsplit(".", 1)[-1])


def drop_skipped_links(hparams: MutableMapping[str, Any], stated: Mapping[str, Stated]) -> None:
    """Takes out of the task's ``hparams`` what the links whose target the chosen classes do
    not take put there.

    jsonargparse reports such a link as applied though it set nothing, and LightningCLI records
    every applied link among the task's hyperparameters (``hparams`` is the task's public
    dict, the one Lightning saves in checkpoints): left there, a checkpoint would name
    arguments its classes lack (``LanguageModel`` and ``num_classes``), and its check on resume
    would refuse it.
    """
    for _, target in DATA_LINKS:
        if target in stated:
            continue
        *parents, name = target.removeprefix(f"{TASK}.init_args.").split(".")
        node: Any = hparams
        for key in parents:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, MutableMapping):
            node.pop(name, None)


def resolve(fact: str, target: str, stated: Stated, data_value: Any, data_name: str) -> Any:
    """The value a link target gets: see the module's docstring."""
    value = _plain(stated.value)
    data_value = _plain(data_value)
    if data_value is None:
        if value is None and stated.default is REQUIRED:
            raise DataLinkError(
                f"{target} is not set, and the data ({data_name}) does not tell its "
                f"{fact}: set {target}."
            )
        return stated.value
    if value is None:
        return data_value if stated.default is REQUIRED else None
    if value == data_value:
        return data_value
    if fact in CONFIG_DECIDES:
        return stated.value
    if stated.default is not REQUIRED and value == _plain(stated.default):
        return data_value
    raise DataLinkError(
        f"{target}: {stated.value} contradicts the data: {data_name} has {fact} {data_value}. "
        f"Remove {target} from the config (the data sets it), or use data with {fact} "
        f"{stated.value}."
    )


def _link_value(fact: str, target: str, stated: dict[str, Stated]) -> Any:
    def value(datamodule: Any) -> Any:
        if target not in stated:
            return None  # the class takes no such argument: jsonargparse skips the link
        data_value = getattr(data_facts_of(datamodule), fact)
        data_name = type(datamodule).__name__ if datamodule is not None else "no DataModule"
        return resolve(fact, target, stated[target], data_value, data_name)

    return value


def _parameters(class_path: str) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(import_class(class_path, "the config")).parameters)
    except (LitlabError, TypeError, ValueError):
        return {}  # jsonargparse reports a class it cannot import


def _plain(value: Any) -> Any:
    """Lists and tuples compare alike (YAML gives lists, the data tuples)."""
    return tuple(value) if isinstance(value, list | tuple) else value
