"""Turn the CLI's parse and instantiation errors into one short message for the user."""

from __future__ import annotations

import re

from litlab.core.errors import LitlabError
from litlab.core.number_types import NUMBER_TYPES

# jsonargparse's messages nest one block per Union member and repeat the whole given value;
# these lines never help a user find their mistake.
_NOISE = (
    "Given value",
    "Subtypes:",
    "Does not validate",
    "Errors:",
    "Problem with given class_path",
)
# "Not of type PositiveFloat: -0.01 is not a positive float (must be > 0). Got value: ...": the
# parts around the message of a number type with a range.
_OUT_OF_RANGE = re.compile(
    rf"^Not of type (?:{'|'.join(t.__name__ for t in NUMBER_TYPES)}): |\. Got value: .*$"
)


# The task argument renamed from `model` to `network`, as a config or command line of an earlier
# litlab writes it: `model.init_args.model...` in YAML, `--model.model...` on the command line.
_OLD_NETWORK_KEY = re.compile(r"\bmodel\.(?:init_args\.)?model\b")


def renamed_key_hint(message: str, argv: list[str]) -> str:
    """A sentence to add to a parse error caused by a key that was renamed, else ""."""
    if not any(_OLD_NETWORK_KEY.search(text) for text in (message, *argv)):
        return ""
    return (
        " Tasks take their network as `network` now: write model.init_args.network in a "
        "config and --model.network... on the command line (run folders and checkpoints of an "
        "earlier litlab are read as they are)."
    )


def describe_parse_error(message: str, subcommand: str | None) -> str:
    """A short message naming the bad key, from a jsonargparse parse error."""
    help_hint = f"`litlab {subcommand or '<fit|validate|test|predict>'} --help` lists the keys"
    if missing := re.search(r"File does not exist: '([^']+)'", message):
        return f"config file not found: {missing.group(1)}. Check the path given to -c/--config."
    keys = re.findall(r'Parser key "([^"]+)"', message)
    class_path = re.search(r"Problem with given class_path '([^']+)'", message)
    if unknown := re.search(r"Option '([^']+)' is not accepted", message):
        key = ".".join([*keys, unknown.group(1)])
        owner = f" ({class_path.group(1)} has no such argument)" if class_path else ""
        return f"unknown config key '{key}'{owner}. Check its spelling; {help_hint}."
    if unknown := re.search(r"unrecognized arguments: --(\S+)", message):
        return f"unknown config key '{unknown.group(1)}'. Check its spelling; {help_hint}."
    if unknown := re.search(r"does not accept option '([^']+)'", message):
        return f"unknown config key '{unknown.group(1)}'. Check its spelling; {help_hint}."
    if keys:
        lines = (line.strip().lstrip("- ") for line in message.splitlines()[1:])
        details = [
            line
            for line in lines
            if line
            and not line.startswith(_NOISE)
            and "Parser key" not in line
            and "<class 'NoneType'>" not in line
        ]
        given = _given_value(message)
        if any(_OUT_OF_RANGE.match(line) for line in details):
            # The number type's own message names the value and the range. Inside a Union,
            # jsonargparse cuts the value out of it ("is not a positive int") as it prints it
            # below: put it back in front.
            details = [_OUT_OF_RANGE.sub("", line) for line in details]
            details = [f"{given} {line}" if line.startswith("is ") else line for line in details]
        elif given and not any("Got value" in line for line in details):
            details.append(f"got {given}")
        return f"invalid value for '{'.'.join(keys)}': {'; '.join(details)}. {help_hint}."
    return f"{message.strip()}. {help_hint}."


def _given_value(message: str) -> str | None:
    """The value the user gave for the bad key: the innermost ``Given value``, unwrapped from
    jsonargparse's ``NestedArg`` for a dotted key on the command line."""
    given = re.search(r"Given value: (.{1,80})$", message, flags=re.MULTILINE)
    if given is None:
        return None
    nested = re.fullmatch(r"NestedArg\(key='[^']*', val='?(.*?)'?\)", given.group(1))
    return nested.group(1) if nested else given.group(1)


def find_litlab_error(error: BaseException) -> LitlabError | None:
    """The LitlabError behind ``error``, if any (jsonargparse and Lightning wrap them; one
    raised in a DataLoader worker comes back with the worker's traceback as its message, and is
    given back its own)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, LitlabError):
            return _from_worker(current) or current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _from_worker(error: LitlabError) -> LitlabError | None:
    """The error as raised in a DataLoader worker, from the message PyTorch re-raises it with
    in the main process ("Caught X in DataLoader worker process N. Original Traceback ...",
    ending with the traceback's own ``module.X: message``); None for any other error."""
    text = str(error)
    if not (text.startswith("Caught ") and "DataLoader worker process" in text.split("\n")[0]):
        return None
    kind = type(error)
    marker = f"\n{kind.__module__}.{kind.__qualname__}: "
    at = text.rfind(marker)
    if at < 0:
        return None
    return kind(text[at + len(marker) :].strip())
