"""How a run is labelled in W&B: a name that says the experiment and what the command line
changed, and tags.

``litlab fit -c experiments/vision/mnist_mlp.yaml --model.lr 0.01 --data.batch_size=64
--trainer.devices 2`` is named ``mnist_mlp model.lr=0.01 data.batch_size=64``: the overrides
the user typed, in order, without ``init_args``, leaving out the options that choose files or
where and how fast to run rather than what is trained (the ``_LEFT_OUT_*`` sets below).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from litlab.core.errors import LitlabError

# Top-level options that are not hyperparameters.
_LEFT_OUT_OPTIONS = {"config", "print_config", "ckpt_path", "runs_root", "experiment", "tags"}
_LEFT_OUT_OPTIONS |= {"help", "weights_only"}
# Trainer options that change where, how fast or how visibly a run goes, not its result.
_LEFT_OUT_TRAINER_KEYS = {
    "logger",
    "callbacks",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "plugins",
    "default_root_dir",
    "enable_progress_bar",
    "enable_model_summary",
    "enable_checkpointing",
    "log_every_n_steps",
    "num_sanity_val_steps",
    "fast_dev_run",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
    "profiler",
    "benchmark",
    "detect_anomaly",
    "barebones",
    "enable_autolog_hparams",
    "model_registry",
}
# Data loading and location options, under any DataModule.
_LEFT_OUT_LEAF_KEYS = {
    "num_workers",
    "pin_memory",
    "persistent_workers",
    "prefetch_factor",
    "data_dir",
    "download",
}
MAX_VALUE_CHARS = 32
MAX_NAME_CHARS = 128
MAX_TAG_CHARS = 64  # W&B's limit
DOMAINS = ("vision", "nlp", "generative")
_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*\.([A-Z]\w*)$")


def command_line_overrides(argv: Iterable[str]) -> dict[str, str]:
    """The ``--key value`` and ``--key=value`` options of a command line, keys as typed without
    the dashes; a key given twice keeps its last value, as the parser does."""
    argv = list(argv)
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            continue
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            if i < len(argv) and not _is_option(argv[i]):
                value = argv[i]
                i += 1
            else:
                value = "true"
        overrides.pop(key, None)
        overrides[key] = value
    return overrides


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and not _looks_numeric(arg)


def _looks_numeric(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def _display_key(key: str) -> str | None:
    """The key as shown in a run name, or None when it stays out of names."""
    parts = [p for p in key.rstrip("+").split(".") if p not in ("init_args", "class_path")]
    if not parts or parts[0] in _LEFT_OUT_OPTIONS or parts[-1] in _LEFT_OUT_LEAF_KEYS:
        return None
    if parts[0] == "trainer" and len(parts) > 1 and parts[1] in _LEFT_OUT_TRAINER_KEYS:
        return None
    return ".".join(parts)


def _display_value(value: str) -> str:
    value = "".join(value.split())
    if match := _CLASS_PATH.match(value):
        value = match.group(1)
    if len(value) > MAX_VALUE_CHARS:
        value = value[: MAX_VALUE_CHARS - 1] + "…"
    return value


def run_name(experiment: str, argv: Iterable[str]) -> str:
    """The experiment followed by the hyperparameters the command line set, ``key=value``."""
    parts = [experiment]
    for key, value in command_line_overrides(argv).items():
        if (shown := _display_key(key)) is not None:
            parts.append(f"{shown}={_display_value(value)}")
    name = " ".join(parts)
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def run_tags(
    tags: Iterable[str], model_class_path: str | None, subcommand: str | None
) -> list[str]:
    """The given tags, then the litlab domain of the model (vision, nlp, generative) and the
    subcommand, without repeats.

    Raises:
        LitlabError: A tag is empty or longer than W&B allows.
    """
    all_tags = [str(tag) for tag in tags]
    for tag in all_tags:
        if not 1 <= len(tag) <= MAX_TAG_CHARS:
            raise LitlabError(
                f"tag {tag!r} has {len(tag)} characters; W&B tags have 1 to {MAX_TAG_CHARS}. "
                f"Shorten it in `tags:` or --tags."
            )
    module_parts = (model_class_path or "").split(".")
    if len(module_parts) > 2 and module_parts[0] == "litlab" and module_parts[1] in DOMAINS:
        all_tags.append(module_parts[1])
    if subcommand:
        all_tags.append(subcommand)
    return list(dict.fromkeys(all_tags))
