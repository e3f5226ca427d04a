"""`litlab sweep` with the Optuna backend on a tiny MNIST experiment, trials as real `litlab fit`
processes: runs and best.yaml, a resume after a crash that runs only the missing trial, a
trial the hyperband pruner stops early, and a metric the experiment never logs rejected before
any trial runs."""

import io
import json
import sys
import textwrap
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from wandb_records import read_records

from litlab.app.cli import main
from litlab.app.sweeps import optuna_backend
from litlab.app.sweeps.optuna_backend import (
    RUN_DIR_ATTR,
    VALUES_ATTR,
    default_storage,
    open_study,
    progress,
)
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import load_sweep

# The tests ask for trials themselves, outside the sweep loop that records heartbeats.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

TINY_MLP = """\
seed_everything: 1
model:
  class_path: litlab.vision.tasks.classification.ImageClassifier
  init_args:
    network:
      class_path: litlab.vision.models.mlp.MLPClassifier
      init_args: {in_features: 784, hidden_features: [16], num_classes: 10}
    num_classes: 10
data:
  class_path: litlab.vision.data.mnist.MNISTDataModule
  init_args: {batch_size: 32, val_size: 1000, num_workers: 0}
trainer:
  max_epochs: 2
  limit_train_batches: 4
  limit_val_batches: 2
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
"""


@pytest.fixture
def tiny(data_root, in_tmp_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (in_tmp_dir / "tiny.yaml").write_text(TINY_MLP)
    return in_tmp_dir


def write_sweep(folder: Path, text: str) -> Path:
    path = folder / "tiny.sweep.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def sweep(*args: str) -> None:
    main(["sweep", *args, "--runs_root", "runs"])


def the_study(sweep_file: Path):
    spec = load_sweep(sweep_file)
    space = OptunaSpace(spec)
    return spec, space, open_study(spec, space, default_storage(Path("runs/sweeps/tiny")))


@pytest.mark.slow
def test_sweep_then_resume_after_a_crash(tiny, monkeypatch):
    sweep_file = write_sweep(
        tiny,
        """\
        program: tiny.yaml
        method: random
        metric: {name: val/acc, goal: maximize}
        parameters:
          model.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-1}
          data.batch_size: {values: [16, 32]}
        """,
    )
    # The preflight has its own test below; here the keys are still checked.
    sweep(str(sweep_file), "--count", "2", "--workers", "2", "--seed", "0", "--no-preflight")

    sweep_dir = tiny / "runs" / "sweeps" / "tiny"
    _, space, study = the_study(sweep_file)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    runs = sorted((sweep_dir / "trials" / "tiny").iterdir())
    assert len(runs) == 2
    assert {str(r) for r in runs} == {str(tiny / t.user_attrs[RUN_DIR_ATTR]) for t in study.trials}
    for trial in study.trials:
        run = tiny / trial.user_attrs[RUN_DIR_ATTR]
        assert (run / "checkpoints" / "best.ckpt").is_file()
        saved = yaml.safe_load((run / "config.yaml").read_text())  # the trial's values
        values = trial.user_attrs[VALUES_ATTR]
        assert saved["model"]["init_args"]["lr"] == pytest.approx(values["model.lr"])
        assert saved["data"]["init_args"]["batch_size"] == values["data.batch_size"]
        result = json.loads((run / "sweep_trial.json").read_text())
        assert result["value"] == pytest.approx(trial.value)

    # A crash: a sweep process died while its trial ran; its heartbeat stopped.
    monkeypatch.setattr(optuna_backend, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(optuna_backend, "HEARTBEAT_GRACE_S", 1)
    _, space, study = the_study(sweep_file)
    crashed = study.ask(space.distributions())
    study._storage.record_heartbeat(crashed._trial_id)
    time.sleep(2.5)

    sweep(str(sweep_file), "--count", "3")
    _, space, study = the_study(sweep_file)
    states = [t.state for t in study.trials]
    assert states == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert study.trials[3].user_attrs[VALUES_ATTR] == space.values(crashed.params)
    assert progress(study).finished == 3
    assert len(list((sweep_dir / "trials" / "tiny").iterdir())) == 3  # one more run only

    # best.yaml is a config litlab reads back with the best trial's values.
    best = study.best_trial
    output = io.StringIO()
    with redirect_stdout(output), pytest.raises(SystemExit):
        main(["fit", "-c", str(sweep_dir / "best.yaml"), "--print_config"])
    config = yaml.safe_load(output.getvalue())
    assert config["model"]["init_args"]["lr"] == pytest.approx(
        best.user_attrs[VALUES_ATTR]["model.lr"]
    )
    assert config["experiment"] == "tiny"
    assert len((sweep_dir / "trials.csv").read_text().splitlines()) == 1 + 4
    assert (sweep_dir / "optimization_history.png").is_file()


@pytest.mark.slow
def test_a_pruned_trial_stops_early(tiny, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # the trial's W&B run, grouped by the sweep
    (tiny / "tiny.yaml").write_text(
        TINY_MLP.replace("  max_epochs: 2\n", "  max_epochs: 3\n").replace("  logger: false\n", "")
    )
    sweep_file = write_sweep(
        tiny,
        """\
        program: tiny.yaml
        method: random
        metric: {name: val/acc, goal: maximize}
        parameters:
          model.lr: {values: [1.0e-5]}
        early_terminate: {type: hyperband, min_iter: 1, max_iter: 2, eta: 3}
        """,
    )
    # An earlier trial that scored a perfect 1.0 at its first validation.
    _, space, study = the_study(sweep_file)
    best = study.ask(space.distributions())
    best.report(1.0, step=1)
    assert not best.should_prune()
    study.tell(best, 1.0)

    sweep(str(sweep_file), "--count", "2")

    _, _, study = the_study(sweep_file)
    pruned = study.trials[1]
    assert pruned.state == TrialState.PRUNED
    run = tiny / pruned.user_attrs[RUN_DIR_ATTR]
    result = json.loads((run / "sweep_trial.json").read_text())
    assert result["pruned"]
    assert result["validations"] == 1
    assert result["epochs"] == 1  # of max_epochs 3
    assert result["global_step"] == 4  # one epoch of limit_train_batches
    (records,) = run.glob("wandb/offline-run-*/run-*.wandb")
    groups = []
    for _ in range(100):  # W&B's service may still be writing a finished run's log
        groups = [
            r.run.run_group for r in read_records(records) if r.WhichOneof("record_type") == "run"
        ]
        if groups:
            break
        time.sleep(0.1)
    assert groups == ["tiny"]


@pytest.mark.slow
def test_a_metric_the_experiment_never_logs_is_rejected_before_any_trial(tiny):
    sweep_file = write_sweep(
        tiny,
        """\
        program: tiny.yaml
        method: random
        metric:
          name: val/accuracy
        parameters:
          model.lr: {min: 0.001, max: 0.01}
        """,
    )
    with pytest.raises(SystemExit) as exit_info:
        sweep(str(sweep_file), "--count", "2")
    message = str(exit_info.value.code)
    assert message.startswith(f"litlab sweep: error: {sweep_file}:4: metric.name: ")
    assert "never logs 'val/accuracy'" in message
    assert "val/acc" in message.split("logged:")[1]
    assert not (tiny / "runs" / "sweeps" / "tiny" / "trials").exists()
