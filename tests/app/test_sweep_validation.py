"""A sweep's keys are checked against its experiment's config parser before any trial runs;
a key the experiment does not take is named with its line in the sweep file."""

from pathlib import Path

import pytest

from litlab.app.sweeps.spec import load_sweep
from litlab.app.sweeps.validation import check_config_keys
from litlab.core.errors import LitlabError

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"


def sweep_file(tmp_path, parameters: str):
    path = tmp_path / "mlp.sweep.yaml"
    header = f"program: {MNIST_MLP}\nmethod: random\nmetric: {{name: val/acc}}\n"
    path.write_text(f"{header}parameters:\n{parameters}")
    return load_sweep(path)


def test_keys_the_experiment_takes_pass(tmp_path):
    spec = sweep_file(
        tmp_path,
        "  model.lr: {min: 0.001, max: 0.01}\n"
        "  model.network.init_args.hidden_features: {values: [[32], [64, 32]]}\n"
        "  trainer.max_epochs: {value: 2}\n",
    )
    check_config_keys(spec, spec.center_values())


def test_an_unknown_key_is_named_with_its_line(tmp_path):
    spec = sweep_file(tmp_path, "  model.lr: {min: 0.001, max: 0.01}\n  model.lrr: {values: [1]}\n")
    with pytest.raises(LitlabError) as error:
        check_config_keys(spec, spec.center_values())
    message = str(error.value)
    assert message.startswith(f"{spec.path}:6: parameters.model.lrr: ")
    assert f"{MNIST_MLP} does not take it: unknown config key 'model.lrr'" in message


def test_a_value_of_the_wrong_type_is_named(tmp_path):
    spec = sweep_file(tmp_path, "  trainer.max_epochs: {values: [many, 2]}\n")
    with pytest.raises(LitlabError, match=r":5: parameters.trainer.max_epochs: .*invalid value"):
        check_config_keys(spec, spec.center_values())
