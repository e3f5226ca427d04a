"""A sweep file: W&B's sweep YAML, whose parameter names are litlab's dotted config keys.

::

    program: experiments/vision/mnist_mlp.yaml    # the experiment config it sweeps
    method: bayes                                  # grid, random or bayes
    metric: {name: val/acc, goal: maximize}
    parameters:
      model.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
      data.batch_size: {values: [64, 128, 256]}
    early_terminate: {type: hyperband, min_iter: 1, eta: 3}

Loading checks what W&B's sweep schema checks (and that ``program`` exists and a metric is
named), so a bad file stops before any trial runs with a message that names its line and key,
e.g. ``mnist_mlp.sweep.yaml:9: parameters.model.lr: min (0.1) is above max (0.001)``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from litlab.core.errors import LitlabError

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
TOP_LEVEL_KEYS = (
    "program",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "name",
    "description",
    "project",
    "entity",
    "run_cap",
)
METRIC_KEYS = ("name", "goal", "target", "impute", "impute_while_running")
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")
# W&B's distributions: the keys each needs, and the others it takes with W&B's defaults.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
# Distributions whose min and max are values (the others' are natural-log exponents).
POSITIVE_BOUNDS = ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values")
# W&B's rule for parameter names; a dot separates litlab's config levels.
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Parameter:
    """One swept config key and its W&B distribution, W&B's defaults filled in."""

    key: str
    distribution: str
    settings: dict[str, Any]

    def center(self) -> Any:
        """A typical value (the first of ``values``, the middle of a range): what a check run
        before the sweep trains with."""
        s, kind = self.settings, self.distribution
        if kind == "constant":
            return s["value"]
        if kind.startswith("categorical"):
            return s["values"][0]
        if kind == "int_uniform":
            return (s["min"] + s["max"]) // 2
        if kind in ("uniform", "q_uniform"):
            value = (s["min"] + s["max"]) / 2
        elif kind in ("log_uniform", "q_log_uniform"):
            value = math.exp((s["min"] + s["max"]) / 2)
        elif kind == "inv_log_uniform":
            value = math.exp(-(s["min"] + s["max"]) / 2)
        elif kind in POSITIVE_BOUNDS:
            value = math.sqrt(s["min"] * s["max"])
        elif kind in ("normal", "q_normal"):
            value = s["mu"]
        elif kind in ("log_normal", "q_log_normal"):
            value = math.exp(s["mu"])
        else:  # beta, q_beta: the mean
            value = s["a"] / (s["a"] + s["b"]) if s["a"] + s["b"] > 0 else 0.5
        return quantize(value, s["q"]) if "q" in s else value


def quantize(value: float, q: float) -> float | int:
    """W&B's ``round(value / q) * q``, an int when ``q`` is one; float noise trimmed."""
    rounded = round(value / q) * q
    return int(rounded) if isinstance(q, int) else float(f"{rounded:.12g}")


@dataclass(frozen=True)
class Hyperband:
    """W&B's ``early_terminate: {type: hyperband, ...}``."""

    min_iter: int | None
    max_iter: int | None
    s: float | None
    eta: float
    strict: bool


@dataclass(frozen=True)
class SweepSpec:
    """A loaded and checked sweep file."""

    path: Path
    name: str
    program: str
    method: str
    metric: str
    goal: str
    target: float | None
    parameters: dict[str, Parameter]
    hyperband: Hyperband | None
    run_cap: int | None
    project: str | None
    entity: str | None
    raw: dict[str, Any] = field(repr=False)
    lines: dict[str, int] = field(repr=False)

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"

    def error(self, key: str, message: str) -> LitlabError:
        """A user error about ``key`` (``parameters.model.lr.min``), naming its line."""
        return LitlabError(f"{_where(self.path, self.lines, key)}: {key}: {message}")

    def center_values(self) -> dict[str, Any]:
        return {key: parameter.center() for key, parameter in self.parameters.items()}

    def fingerprint(self) -> dict[str, Any]:
        """What decides a study's trials: a study resumed with another file would mix them."""
        keys = ("program", "method", "metric", "parameters", "early_terminate")
        return {key: self.raw.get(key) for key in keys}


def default_sweep_name(path: Path) -> str:
    """``mnist_mlp.sweep.yaml`` -> ``mnist_mlp``."""
    name = path.name
    for suffix in (".yaml", ".yml", ".sweep"):
        name = name.removesuffix(suffix)
    return name


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; a LitlabError names the first problem's line and key."""
    path = Path(path)
    if not path.is_file():
        raise LitlabError(f"sweep file not found: {path}")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as err:
        raise LitlabError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise LitlabError(f"{path}: a sweep file is a mapping (program, method, metric, ...)")
    return _SweepFile(path, raw, lines).parse()


class _SweepFile:
    def __init__(self, path: Path, raw: dict[str, Any], lines: dict[str, int]) -> None:
        self.path, self.raw, self.lines = path, raw, lines

    def fail(self, key: str, message: str) -> LitlabError:
        return LitlabError(f"{_where(self.path, self.lines, key)}: {key}: {message}")

    def parse(self) -> SweepSpec:
        raw = self.raw
        if "command" in raw:
            raise self.fail(
                "command",
                "litlab builds the command itself (litlab fit -c <program> --key=value ...); "
                "remove it, and put fixed settings in the experiment config or as parameters "
                "with a single value:",
            )
        self.check_keys("", raw, TOP_LEVEL_KEYS)
        for key in ("program", "method", "metric", "parameters"):
            if key not in raw:
                raise self.fail(key, f"missing: a sweep file needs {key}:")
        program = self.string("program")
        if not Path(program).is_file():
            raise self.fail(
                "program",
                f"{program} is not a file (the experiment config the sweep trains; the path "
                f"is relative to the folder litlab sweep runs in)",
            )
        method = raw["method"]
        if method not in METHODS:
            raise self.fail("method", f"{method!r} is not one of {', '.join(METHODS)}")
        metric, goal, target = self.metric()
        parameters = self.parameters(method)
        name = self.string("name") if "name" in raw else default_sweep_name(self.path)
        if not _NAME.match(name):
            raise self.fail("name", f"{name!r}: use letters, digits, '_', '-' and '.' only")
        run_cap = raw.get("run_cap")
        if run_cap is not None and not (_is_int(run_cap) and run_cap > 0):
            raise self.fail("run_cap", f"expected a positive integer, got {run_cap!r}")
        return SweepSpec(
            path=self.path,
            name=name,
            program=program,
            method=method,
            metric=metric,
            goal=goal,
            target=target,
            parameters=parameters,
            hyperband=self.hyperband(),
            run_cap=run_cap,
            project=self.string("project") if "project" in raw else None,
            entity=self.string("entity") if "entity" in raw else None,
            raw=raw,
            lines=self.lines,
        )

    def string(self, key: str) -> str:
        value = self.raw[key]
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def check_keys(self, prefix: str, given: dict[str, Any], accepted: tuple[str, ...]) -> None:
        for key in given:
            if key not in accepted:
                close = difflib.get_close_matches(str(key), accepted, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    f"{prefix}{key}", f"unknown key; {hint}accepted: {', '.join(accepted)}"
                )

    def metric(self) -> tuple[str, str, float | None]:
        metric = self.raw["metric"]
        if not isinstance(metric, dict):
            raise self.fail("metric", "expected a mapping like {name: val/acc, goal: maximize}")
        self.check_keys("metric.", metric, METRIC_KEYS)
        name = metric.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail("metric.name", "missing: the logged metric to optimise (val/acc)")
        goal = metric.get("goal", "minimize")
        if goal not in GOALS:
            raise self.fail("metric.goal", f"{goal!r} is not one of {', '.join(GOALS)}")
        target = metric.get("target")
        if target is not None and not _is_number(target):
            raise self.fail("metric.target", f"expected a number, got {target!r}")
        return name, goal, target

    def parameters(self, method: str) -> dict[str, Parameter]:
        given = self.raw["parameters"]
        if not isinstance(given, dict) or not given:
            raise self.fail("parameters", "expected a mapping of config keys to distributions")
        parameters = {}
        for key, settings in given.items():
            where = f"parameters.{key}"
            if not isinstance(key, str) or not _KEY.match(key):
                raise self.fail(where, "a parameter is a dotted config key such as model.lr")
            parameters[key] = self.parameter(where, key, settings)
            kind = parameters[key].distribution
            if method == "grid" and kind not in ("constant", "categorical"):
                raise self.fail(
                    where,
                    f"method grid needs values: or value: for every parameter (W&B's rule), "
                    f"this one has distribution {kind}; use method random or bayes for it",
                )
        return parameters

    def parameter(self, where: str, key: str, settings: Any) -> Parameter:
        if not isinstance(settings, dict):
            raise self.fail(
                where, "expected a mapping such as {values: [...]} or {min: .., max: ..}"
            )
        if "parameters" in settings:
            raise self.fail(
                f"{where}.parameters",
                "nested parameters are not supported: name the full dotted key instead "
                "(model.optimizer.init_args.momentum)",
            )
        kind = settings.get("distribution") or _inferred_distribution(settings)
        if kind is None:
            raise self.fail(where, "give value:, values:, min: and max:, or a distribution:")
        if kind not in DISTRIBUTIONS:
            close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(
                f"{where}.distribution",
                f"unknown distribution {kind!r}; {hint}known: {', '.join(DISTRIBUTIONS)}",
            )
        required, optional = DISTRIBUTIONS[kind]
        self.check_keys(f"{where}.", settings, (*required, *optional, "distribution"))
        for name in required:
            if name not in settings:
                raise self.fail(where, f"distribution {kind} needs {name}:")
        filled = {**optional, **{k: v for k, v in settings.items() if k != "distribution"}}
        self.check_settings(where, kind, filled)
        return Parameter(key=key, distribution=kind, settings=filled)

    def check_settings(self, where: str, kind: str, s: dict[str, Any]) -> None:
        for name, value in s.items():
            if name not in ("value", "values", "probabilities") and not _is_number(value):
                raise self.fail(f"{where}.{name}", _not_a_number(value))
        if "values" in s and (not isinstance(s["values"], list) or not s["values"]):
            raise self.fail(f"{where}.values", "expected a non-empty list")
        if kind == "categorical_w_probabilities":
            probabilities = s["probabilities"]
            if not isinstance(probabilities, list) or len(probabilities) != len(s["values"]):
                raise self.fail(f"{where}.probabilities", "give one probability per value")
            if not all(_is_number(p) and p >= 0 for p in probabilities):
                raise self.fail(f"{where}.probabilities", "expected numbers >= 0")
            if abs(sum(probabilities) - 1) > 1e-6:
                raise self.fail(f"{where}.probabilities", f"sum to {sum(probabilities)}, not 1")
        if kind == "int_uniform" and not (_is_int(s["min"]) and _is_int(s["max"])):
            raise self.fail(where, "int_uniform needs integer min and max")
        if "min" in s and s["min"] > s["max"]:
            raise self.fail(where, f"min ({s['min']}) is above max ({s['max']})")
        if kind in POSITIVE_BOUNDS and s["min"] <= 0:
            raise self.fail(f"{where}.min", f"{kind} needs min > 0, got {s['min']}")
        if "q" in s and s["q"] <= 0:
            raise self.fail(f"{where}.q", f"must be > 0, got {s['q']}")
        for name in ("sigma", "a", "b"):
            if name in s and s[name] < 0:
                raise self.fail(f"{where}.{name}", f"must be >= 0, got {s[name]}")

    def hyperband(self) -> Hyperband | None:
        given = self.raw.get("early_terminate")
        if given is None:
            return None
        where = "early_terminate"
        if not isinstance(given, dict):
            raise self.fail(where, "expected a mapping such as {type: hyperband, min_iter: 1}")
        self.check_keys(f"{where}.", given, HYPERBAND_KEYS)
        if given.get("type") != "hyperband":
            raise self.fail(f"{where}.type", f"{given.get('type')!r}: only hyperband exists")
        for name in ("min_iter", "max_iter"):
            if name in given and not (_is_int(given[name]) and given[name] >= 1):
                raise self.fail(f"{where}.{name}", f"expected an integer >= 1, got {given[name]!r}")
        if "min_iter" not in given and not ("max_iter" in given and "s" in given):
            raise self.fail(where, "hyperband needs min_iter:, or max_iter: and s: (W&B's rule)")
        for name in ("s", "eta"):
            if name in given and not _is_number(given[name]):
                raise self.fail(f"{where}.{name}", _not_a_number(given[name]))
        eta = given.get("eta", 3)
        if eta <= 1:
            raise self.fail(f"{where}.eta", f"must be above 1, got {eta}")
        min_iter, max_iter = given.get("min_iter"), given.get("max_iter")
        if min_iter is not None and max_iter is not None and min_iter > max_iter:
            raise self.fail(where, f"min_iter ({min_iter}) is above max_iter ({max_iter})")
        strict = given.get("strict", True)
        if not isinstance(strict, bool):
            raise self.fail(f"{where}.strict", f"expected true or false, got {strict!r}")
        return Hyperband(min_iter, max_iter, given.get("s"), eta, strict)


def _inferred_distribution(settings: dict[str, Any]) -> str | None:
    """W&B's defaults when a parameter names no distribution."""
    if "values" in settings:
        return "categorical_w_probabilities" if "probabilities" in settings else "categorical"
    if "value" in settings:
        return "constant"
    if "min" in settings and "max" in settings:
        both_int = _is_int(settings["min"]) and _is_int(settings["max"])
        return "int_uniform" if both_int else "uniform"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _not_a_number(value: Any) -> str:
    message = f"expected a number, got {value!r}"
    try:
        float(value)
    except (TypeError, ValueError):
        return message
    # PyYAML reads 1e-4 as a string: YAML 1.1 floats need a dot (1.0e-4).
    return f"{message}, a string: write exponents with a dot, as 1.0e-4"


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """The line of every mapping key, by its dotted path (``parameters.model.lr.min``)."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, f"{path}."))
    return lines


def _where(path: Path, lines: dict[str, int], key: str) -> str:
    # An unknown key's parent is where it is missing from.
    while key and key not in lines:
        key = key.rpartition(".")[0]
    return f"{path}:{lines[key]}" if key else str(path)
