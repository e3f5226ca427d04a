"""A W&B sweep file in Optuna's terms: each method's sampler, each distribution mapped to the
same distribution (checked by sampling it), W&B's hyperband as Optuna's pruner."""

import math
import statistics
import textwrap

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from litlab.app.sweeps.optuna_space import OptunaSpace, pruner_from_settings
from litlab.app.sweeps.spec import load_sweep
from litlab.core.errors import LitlabError

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def space_of(in_tmp_dir):
    (in_tmp_dir / "exp.yaml").write_text("{}\n")

    def space_of(parameters: str, method: str = "random", extra: str = "") -> OptunaSpace:
        text = (
            f"program: exp.yaml\nmethod: {method}\nmetric: {{name: val/loss}}\n"
            f"parameters:\n{textwrap.indent(textwrap.dedent(parameters), '  ')}{extra}"
        )
        (in_tmp_dir / "s.sweep.yaml").write_text(text)
        return OptunaSpace(load_sweep(in_tmp_dir / "s.sweep.yaml"))

    return space_of


def sample(space: OptunaSpace, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=space.sampler(seed=seed))
    return [space.values(study.ask(space.distributions()).params) for _ in range(n)]


@pytest.mark.parametrize(
    ("method", "sampler"),
    [
        ("grid", optuna.samplers.GridSampler),
        ("random", optuna.samplers.RandomSampler),
        ("bayes", optuna.samplers.TPESampler),
    ],
)
def test_each_method_has_its_sampler(space_of, method, sampler):
    space = space_of("a: {values: [1, 2]}\n", method=method)
    assert isinstance(space.sampler(), sampler)
    assert space.direction == "minimize"  # W&B's default goal


def test_distributions_map_to_the_same_distribution(space_of):
    space = space_of(
        """\
        c: {values: [a, 1, null]}
        i: {min: 2, max: 9}
        u: {min: 0.5, max: 1.5}
        lv: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
        ilv: {distribution: inv_log_uniform_values, min: 1.0e-4, max: 1.0e-2}
        le: {distribution: log_uniform, min: -9.0, max: -4.0}
        ile: {distribution: inv_log_uniform, min: 2.0, max: 5.0}
        k: {value: 7}
        """
    )
    assert space.distributions() == {
        "c": CategoricalDistribution(["a", 1, None]),
        "i": IntDistribution(2, 9),
        "u": FloatDistribution(0.5, 1.5),
        "lv": FloatDistribution(1e-4, 1e-2, log=True),
        "ilv": FloatDistribution(1e-4, 1e-2, log=True),
        # W&B's log_uniform bounds are natural-log exponents.
        "le": FloatDistribution(math.exp(-9), math.exp(-4), log=True),
        # inv_log_uniform is exp(-X), X uniform in [min, max].
        "ile": FloatDistribution(math.exp(-5), math.exp(-2), log=True),
    }
    assert space.constants == {"k": 7}
    assert list(space.values(sample(space, 1)[0])) == ["c", "i", "u", "lv", "ilv", "le", "ile", "k"]


def test_log_uniform_values_have_a_log_uniform_spread(space_of):
    space = space_of("lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}\n")
    exponents = [math.log10(v["lr"]) for v in sample(space, 2000)]
    assert all(-4 <= e <= -2 for e in exponents)
    # Each quarter of the exponent range holds a quarter of the samples; a uniform spread on
    # the values would put 1.4% of them in the lowest quarter ([1e-4, 3.2e-4]).
    quarters = [sum(-4 + q / 2 <= e < -4 + (q + 1) / 2 for e in exponents) / 2000 for q in range(4)]
    assert quarters == pytest.approx([0.25] * 4, abs=0.04)


def test_quantised_values_are_rounded_as_wandb_does(space_of):
    space = space_of(
        """\
        width: {distribution: q_log_uniform_values, min: 16, max: 512, q: 8}
        smoothing: {distribution: q_uniform, min: 0.0, max: 0.2, q: 0.05}
        """
    )
    values = sample(space, 300)
    assert all(isinstance(v["width"], int) and v["width"] % 8 == 0 for v in values)
    assert all(16 <= v["width"] <= 512 for v in values)
    assert {v["smoothing"] for v in values} == {0.0, 0.05, 0.1, 0.15, 0.2}
    # Still log-uniform underneath: about half the widths are below sqrt(16 * 512) = 90.5.
    assert sum(v["width"] < 90.5 for v in values) / 300 == pytest.approx(0.5, abs=0.08)


def test_normal_and_log_normal_through_their_quantile(space_of):
    space = space_of(
        """\
        n: {distribution: normal, mu: 3.0, sigma: 0.5}
        ln: {distribution: log_normal, mu: -2.0, sigma: 0.3}
        """
    )
    assert space.distributions()["n:quantile"] == FloatDistribution(1e-9, 1 - 1e-9)
    values = sample(space, 2000)
    normal = [v["n"] for v in values]
    assert statistics.mean(normal) == pytest.approx(3.0, abs=0.05)
    assert statistics.stdev(normal) == pytest.approx(0.5, abs=0.04)
    logs = [math.log(v["ln"]) for v in values]
    assert statistics.mean(logs) == pytest.approx(-2.0, abs=0.03)
    assert statistics.stdev(logs) == pytest.approx(0.3, abs=0.03)


def test_list_values_are_stored_as_json_and_given_back_as_lists(space_of):
    space = space_of("h: {values: [[16], [32, 16]]}\n")
    assert space.distributions()["h"] == CategoricalDistribution(["[16]", "[32, 16]"])
    assert {tuple(v["h"]) for v in sample(space, 50)} == {(16,), (32, 16)}


def test_grid_visits_every_combination_once(space_of):
    space = space_of("a: {values: [1, 2, 3]}\nb: {values: [x, y]}\nk: {value: 0}\n", method="grid")
    assert space.grid_size() == 6
    study = optuna.create_study(sampler=space.sampler(seed=1))
    seen = []

    def objective(trial):
        values = space.suggest(trial)  # as the sweep's objective asks
        seen.append((values["a"], values["b"], values["k"]))
        return 0.0

    study.optimize(objective, n_trials=6)  # GridSampler stops the study after the last
    assert sorted(seen) == [(a, b, 0) for a in (1, 2, 3) for b in ("x", "y")]


def test_hyperband_maps_to_optunas_pruner(space_of):
    space = space_of(
        "a: {values: [1]}\n", extra="early_terminate: {type: hyperband, min_iter: 2, eta: 3}\n"
    )
    assert space.pruner_settings == {
        "min_resource": 2,
        "max_resource": "auto",
        "reduction_factor": 3,
    }
    assert isinstance(space.pruner(), optuna.pruners.HyperbandPruner)
    # max_iter with s brackets: the first at max_iter / eta**s.
    space = space_of(
        "a: {values: [1]}\n", extra="early_terminate: {type: hyperband, max_iter: 27, s: 2}\n"
    )
    assert space.pruner_settings == {"min_resource": 3, "max_resource": 27, "reduction_factor": 3}
    assert isinstance(pruner_from_settings(None), optuna.pruners.NopPruner)


def test_what_optuna_cannot_sample_is_refused_naming_the_wandb_backend(space_of):
    with pytest.raises(
        LitlabError, match=r"parameters.b: distribution beta is supported by --backend wandb only"
    ):
        space_of("b: {distribution: beta, a: 2.0, b: 3.0}\n")
    with pytest.raises(LitlabError, match=r"parameters.c: weighted values .* --backend wandb only"):
        space_of("c: {values: [1, 2], probabilities: [0.9, 0.1]}\n")
    with pytest.raises(
        LitlabError, match=r"early_terminate.eta: Optuna's hyperband needs an integer eta"
    ):
        space_of(
            "a: {values: [1]}\n",
            extra="early_terminate: {type: hyperband, min_iter: 1, eta: 2.5}\n",
        )
