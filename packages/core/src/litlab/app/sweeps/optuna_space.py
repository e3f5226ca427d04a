"""A W&B sweep file in Optuna's terms: distributions, sampler, pruner and direction.

=========================================  ================================================
W&B                                        Optuna
=========================================  ================================================
method grid / random / bayes               GridSampler / RandomSampler / TPESampler
metric.goal maximize / minimize            study direction
value (constant)                           not a parameter: every trial gets it
values (categorical)                       CategoricalDistribution (lists and mappings as
                                           their JSON text)
int_uniform                                IntDistribution(min, max)
uniform                                    FloatDistribution(min, max)
log_uniform_values, inv_log_uniform_values FloatDistribution(min, max, log=True)
log_uniform (min, max are exponents)       FloatDistribution(e^min, e^max, log=True)
inv_log_uniform                            FloatDistribution(e^-max, e^-min, log=True)
q_* (quantised)                            the same distribution, then W&B's
                                           round(x / q) * q on the value the trial gets
normal, log_normal (and q_)                a quantile u ~ FloatDistribution(0, 1), mapped
                                           through the normal's inverse CDF
early_terminate hyperband                  HyperbandPruner(min_iter, max_iter or auto, eta)
=========================================  ================================================

Optuna has nothing for ``beta`` and weighted ``probabilities``: those run with
``--backend wandb`` only. The values a trial really got (after rounding or the quantile map)
are what the trial's user attribute ``values`` records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from litlab.app.sweeps.spec import Parameter, SweepSpec, quantize

# The quantile of a normal parameter stays off 0 and 1, where the inverse CDF is infinite.
QUANTILE_MARGIN = 1e-9
_PRIMITIVE = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class SearchVariable:
    """What Optuna samples for one config key, and the trial's value made from it."""

    name: str
    distribution: BaseDistribution
    to_value: Callable[[Any], Any]


class OptunaSpace:
    """The search space, sampler, pruner and direction of a sweep file."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.constants = {
            key: p.settings["value"]
            for key, p in spec.parameters.items()
            if p.distribution == "constant"
        }
        self.variables = {
            key: _variable(spec, p)
            for key, p in spec.parameters.items()
            if p.distribution != "constant"
        }
        self.pruner_settings = pruner_settings(spec)

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.spec.maximize else "minimize"

    def distributions(self) -> dict[str, BaseDistribution]:
        return {v.name: v.distribution for v in self.variables.values()}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every variable of a trial through the public ``suggest_*`` calls (what
        ``study.ask(distributions)`` does for a trial asked outside ``Study.optimize``); a queued
        trial gets its fixed values. Returns the trial's config values."""
        for name, distribution in self.distributions().items():
            if isinstance(distribution, FloatDistribution):
                trial.suggest_float(
                    name,
                    distribution.low,
                    distribution.high,
                    step=distribution.step,
                    log=distribution.log,
                )
            elif isinstance(distribution, IntDistribution):
                trial.suggest_int(
                    name,
                    distribution.low,
                    distribution.high,
                    step=distribution.step,
                    log=distribution.log,
                )
            elif isinstance(distribution, CategoricalDistribution):
                trial.suggest_categorical(name, distribution.choices)
            else:  # pragma: no cover - _variable makes no other kind
                raise TypeError(f"{name}: no suggest call for {distribution!r}")
        return self.values(trial.params)

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """The config values of a trial (every key of the file, in its order) from its params."""
        values = {}
        for key in self.spec.parameters:
            if key in self.constants:
                values[key] = self.constants[key]
            else:
                variable = self.variables[key]
                values[key] = variable.to_value(params[variable.name])
        return values

    def grid(self) -> dict[str, list[Any]]:
        return {
            v.name: list(v.distribution.choices)  # type: ignore[attr-defined]
            for v in self.variables.values()
        }

    def grid_size(self) -> int:
        return math.prod(len(choices) for choices in self.grid().values())

    def sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        if self.spec.method == "grid":
            return optuna.samplers.GridSampler(self.grid(), seed=seed)
        if self.spec.method == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def pruner(self) -> optuna.pruners.BasePruner:
        return pruner_from_settings(self.pruner_settings)


def pruner_settings(spec: SweepSpec) -> dict[str, Any] | None:
    """HyperbandPruner's arguments for the file's ``early_terminate``, None without one.

    W&B's ``min_iter``/``max_iter`` count metric reports, as the trial callback's steps do;
    ``max_iter`` with ``s`` means a first bracket at ``max_iter / eta**s``. ``strict`` has no
    Optuna counterpart.
    """
    hyperband = spec.hyperband
    if hyperband is None:
        return None
    if hyperband.eta != int(hyperband.eta):
        raise spec.error(
            "early_terminate.eta",
            f"Optuna's hyperband needs an integer eta, got {hyperband.eta} (or use --backend "
            "wandb)",
        )
    eta = int(hyperband.eta)
    if hyperband.min_iter is not None:
        min_resource = hyperband.min_iter
    else:
        min_resource = max(1, int(hyperband.max_iter / eta**hyperband.s))  # type: ignore[operator]
    return {
        "min_resource": min_resource,
        "max_resource": hyperband.max_iter or "auto",
        "reduction_factor": eta,
    }


def pruner_from_settings(settings: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    if settings is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(**settings)


def _variable(spec: SweepSpec, parameter: Parameter) -> SearchVariable:
    key, kind, s = parameter.key, parameter.distribution, parameter.settings
    if kind == "categorical":
        return _categorical(key, s["values"])
    if kind == "int_uniform":
        return SearchVariable(key, IntDistribution(s["min"], s["max"]), int)
    if kind in ("beta", "q_beta", "categorical_w_probabilities"):
        what = "weighted values (probabilities)" if "probabilities" in s else f"distribution {kind}"
        raise spec.error(
            f"parameters.{key}",
            f"{what} is supported by --backend wandb only: Optuna has no such sampler. For "
            "the Optuna backend use values:, uniform or log_uniform_values",
        )
    round_to_q = _rounding(s.get("q"))
    if kind in ("normal", "q_normal", "log_normal", "q_log_normal"):
        normal = NormalDist(s["mu"], s["sigma"])
        exp = math.exp if "log" in kind else float

        def from_quantile(u: float) -> Any:
            x = normal.inv_cdf(u) if s["sigma"] > 0 else s["mu"]
            return round_to_q(exp(x))

        quantile = FloatDistribution(QUANTILE_MARGIN, 1 - QUANTILE_MARGIN)
        return SearchVariable(f"{key}:quantile", quantile, from_quantile)
    if kind in ("uniform", "q_uniform"):
        distribution = FloatDistribution(s["min"], s["max"])
    elif kind in ("log_uniform", "q_log_uniform"):
        distribution = FloatDistribution(math.exp(s["min"]), math.exp(s["max"]), log=True)
    elif kind == "inv_log_uniform":
        distribution = FloatDistribution(math.exp(-s["max"]), math.exp(-s["min"]), log=True)
    else:  # log_uniform_values, inv_log_uniform_values, q_log_uniform_values
        distribution = FloatDistribution(s["min"], s["max"], log=True)
    return SearchVariable(key, distribution, round_to_q)


def _categorical(key: str, values: list[Any]) -> SearchVariable:
    # Optuna stores only None, bool, int, float and str choices; others go as their JSON text.
    encoded = [v if isinstance(v, _PRIMITIVE) else json.dumps(v) for v in values]
    decode = dict(zip(encoded, values, strict=True))
    return SearchVariable(key, CategoricalDistribution(encoded), lambda choice: decode[choice])


def _rounding(q: float | None) -> Callable[[float], Any]:
    if q is None:
        return float
    return lambda value: quantize(value, q)
