"""Sweep files: W&B's sweep YAML read with W&B's defaults, and bad files rejected before any
trial runs with a message that names the line and the key."""

import re
import textwrap

import pytest

from litlab.app.sweeps.spec import default_sweep_name, load_sweep, quantize
from litlab.core.errors import LitlabError

GOOD = """\
program: exp.yaml
method: bayes
metric:
  name: val/acc
  goal: maximize
parameters:
  model.lr:
    distribution: log_uniform_values
    min: 1.0e-4
    max: 1.0e-2
  data.batch_size:
    values: [32, 64]
  model.network.init_args.hidden_features:
    values: [[16], [32, 16]]
  trainer.max_epochs:
    value: 3
  model.dropout:
    min: 0.0
    max: 0.5
  model.num_layers:
    min: 1
    max: 4
  model.width:
    distribution: q_log_uniform_values
    min: 16
    max: 512
    q: 8
  model.noise:
    distribution: normal
early_terminate:
  type: hyperband
  min_iter: 1
  eta: 3
"""


@pytest.fixture
def write(in_tmp_dir):
    (in_tmp_dir / "exp.yaml").write_text("trainer: {max_epochs: 1}\n")

    def write(text: str, name: str = "exp.sweep.yaml"):
        path = in_tmp_dir / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def error_of(path) -> str:
    with pytest.raises(LitlabError) as error:
        load_sweep(path)
    return str(error.value)


def test_a_good_file_with_wandb_defaults(write):
    spec = load_sweep(write(GOOD))
    assert spec.name == "exp"  # the file's name without .sweep.yaml
    assert (spec.program, spec.method, spec.metric, spec.goal) == (
        "exp.yaml",
        "bayes",
        "val/acc",
        "maximize",
    )
    kinds = {key: p.distribution for key, p in spec.parameters.items()}
    assert kinds == {
        "model.lr": "log_uniform_values",
        "data.batch_size": "categorical",
        "model.network.init_args.hidden_features": "categorical",
        "trainer.max_epochs": "constant",
        "model.dropout": "uniform",  # float bounds
        "model.num_layers": "int_uniform",  # int bounds
        "model.width": "q_log_uniform_values",
        "model.noise": "normal",
    }
    assert spec.parameters["model.noise"].settings == {"mu": 0.0, "sigma": 1.0}  # W&B's defaults
    assert list(spec.parameters) == list(kinds)  # the file's order
    assert spec.hyperband.min_iter == 1
    assert spec.hyperband.eta == 3


def test_center_values_are_typical_values(write):
    values = load_sweep(write(GOOD)).center_values()
    assert values["model.lr"] == pytest.approx(1e-3)  # geometric middle of a log range
    assert values["data.batch_size"] == 32
    assert values["model.network.init_args.hidden_features"] == [16]
    assert values["trainer.max_epochs"] == 3
    assert values["model.num_layers"] == 2
    assert values["model.width"] == 88  # round(sqrt(16 * 512) / 8) * 8, an int as q is
    assert values["model.noise"] == 0.0


def test_quantize_follows_wandb():
    assert quantize(0.30000000000000004, 0.1) == 0.3
    assert quantize(13.0, 8) == 16
    assert isinstance(quantize(13.0, 8), int)
    assert isinstance(quantize(13.0, 8.0), float)


def test_sweep_name_from_the_file_or_its_name_key(write):
    assert default_sweep_name(write(GOOD, "mnist_mlp.sweep.yaml")) == "mnist_mlp"
    assert load_sweep(write("name: lr-search\n" + GOOD)).name == "lr-search"


# (text replaced in GOOD, its replacement, what the error says)
BAD_FILES = [
    # An unknown key: its line, and a suggestion.
    ("parameters:", "paramters:",
     r"exp.sweep.yaml:6: paramters: unknown key; did you mean 'parameters'"),
    ("distribution: log_uniform_values", "distribution: log_uniform_value",
     r":8: parameters.model.lr.distribution: unknown distribution 'log_uniform_value'; "
     r"did you mean 'log_uniform_values'"),
    ("max: 1.0e-2", "max: 1.0e-5",
     r":7: parameters.model.lr: min \(0.0001\) is above max \(1e-05\)"),
    ("min: 1.0e-4", "min: 1e-4",
     r":9: parameters.model.lr.min: expected a number, got '1e-4', a string: write exponents"),
    ("    min: 1.0e-4\n", "",
     r":7: parameters.model.lr: distribution log_uniform_values needs min:"),
    ("    q: 8\n", "    q: 8\n    step: 2\n", r"parameters.model.width.step: unknown key"),
    ("q: 8", "q: 0", r"parameters.model.width.q: must be > 0"),
    ("min: 16", "min: 0", r"parameters.model.width.min: q_log_uniform_values needs min > 0"),
    ("method: bayes", "method: optuna", r":2: method: 'optuna' is not one of grid, random"),
    ("goal: maximize", "goal: max", r":5: metric.goal: 'max' is not one of minimize, maximize"),
    ("  name: val/acc\n", "", r"metric.name: missing"),
    ("program: exp.yaml", "program: nope.yaml", r":1: program: nope.yaml is not a file"),
    ("  min_iter: 1\n", "", r"early_terminate: hyperband needs min_iter:, or max_iter: and s:"),
    ("eta: 3", "eta: 1", r"early_terminate.eta: must be above 1"),
    ("type: hyperband", "type: median", r"early_terminate.type: 'median': only hyperband"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "expected"), BAD_FILES)
def test_bad_files_are_rejected_naming_line_and_key(write, old, new, expected):
    assert old in GOOD
    message = error_of(write(GOOD.replace(old, new, 1)))
    assert re.search(expected, message), message


def test_grid_needs_values_for_every_parameter(write):
    text = GOOD.replace("method: bayes", "method: grid")
    assert "parameters.model.lr: method grid needs values: or value:" in error_of(write(text))


def test_missing_top_level_keys_and_commands(write):
    assert "parameters: missing" in error_of(write(GOOD.split("parameters:")[0]))
    text = GOOD + "command: [python, train.py]\n"
    assert "command: litlab builds the command itself" in error_of(write(text))
    text = GOOD.replace("  trainer.max_epochs:\n    value: 3\n", "  trainer:\n    parameters: {}\n")
    assert "parameters.trainer.parameters: nested parameters are not supported" in error_of(
        write(text)
    )


def test_probabilities_must_match_values(write):
    text = GOOD.replace("values: [32, 64]", "values: [32, 64]\n    probabilities: [0.5, 0.2]")
    assert "probabilities: sum to 0.7" in error_of(write(text))
    spec = load_sweep(write(text.replace("0.2]", "0.5]")))
    assert spec.parameters["data.batch_size"].distribution == "categorical_w_probabilities"


def test_not_yaml_or_not_a_mapping(write):
    assert "is not valid YAML" in error_of(write("program: [unclosed\n"))
    assert "a sweep file is a mapping" in error_of(write("- a list\n"))
