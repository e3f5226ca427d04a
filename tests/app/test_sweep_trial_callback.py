"""The trial side of a sweep: the metric reported to the study after every validation, a trial
the hyperband pruner rejects stopped at once, the result written, and every DDP rank started
with the same values."""

import sys

import optuna
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from litlab.app.sweeps import trial_process
from litlab.app.sweeps.optuna_space import pruner_from_settings
from litlab.app.sweeps.trial_callback import SweepTrialCallback, sweep_trial_callback
from litlab.app.sweeps.trial_process import trial_command, value_arguments
from litlab.app.sweeps.trial_protocol import (
    METRIC_ENV,
    PRUNER_ENV,
    RESULT_ENV,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ID_ENV,
    TrialResult,
)

HYPERBAND = {"min_resource": 1, "max_resource": 2, "reduction_factor": 3}  # one bracket


class ScoredModule(LightningModule):
    """Logs ``val/score`` = scores[epoch] at each validation."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4, 4)), batch_size=4)


def fit(scores: list[float], callback: SweepTrialCallback) -> Trainer:
    trainer = Trainer(
        max_epochs=len(scores),
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScoredModule(scores))
    return trainer


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def study(storage):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage,
        study_name="s",
        direction="maximize",
        pruner=pruner_from_settings(HYPERBAND),
    )


def trial_callback(storage, trial, result_path) -> SweepTrialCallback:
    return SweepTrialCallback(
        metric="val/score",
        result_path=str(result_path),
        storage=storage,
        study_name="s",
        trial_id=trial._trial_id,
        pruner_settings=HYPERBAND,
    )


def test_a_trial_worse_than_the_best_at_its_first_rung_stops_there(study, storage, tmp_path):
    # A finished trial that scored 0.9 at its first validation.
    good = study.ask()
    good.report(0.9, step=1)
    assert not good.should_prune()
    study.tell(good, 0.9)

    weak = study.ask()
    result_path = tmp_path / "run" / "sweep_trial.json"
    trainer = fit([0.2, 0.95, 0.95, 0.95], trial_callback(storage, weak, result_path))

    assert trainer.current_epoch == 1  # stopped after 1 of 4 epochs
    assert trainer.global_step == 2  # one epoch of 2 batches
    assert study.trials[1].intermediate_values == {1: pytest.approx(0.2)}
    result = TrialResult.read(result_path)
    assert result.pruned
    assert result.validations == 1
    assert result.value == pytest.approx(0.2)
    assert "val/score" in result.logged_metrics


def test_a_trial_that_keeps_up_runs_to_the_end_and_reports_every_validation(
    study, storage, tmp_path
):
    trial = study.ask()
    result_path = tmp_path / "sweep_trial.json"
    trainer = fit([0.5, 0.6, 0.7], trial_callback(storage, trial, result_path))
    assert trainer.current_epoch == 3
    reported = study.trials[0].intermediate_values
    assert reported == {1: pytest.approx(0.5), 2: pytest.approx(0.6), 3: pytest.approx(0.7)}
    result = TrialResult.read(result_path)
    assert not result.pruned
    assert result.value == pytest.approx(0.7)  # the last value, as W&B sweeps take it
    assert result.epochs == 3


def test_without_a_study_it_only_writes_the_logged_metrics(tmp_path):
    callback = SweepTrialCallback(metric="val/other", result_path=str(tmp_path / "r.json"))
    fit([0.5], callback)
    result = TrialResult.read(tmp_path / "r.json")
    assert result.value is None  # never logged: the preflight's answer
    assert result.logged_metrics == ["val/score"]


def test_the_callback_comes_from_the_environment(monkeypatch):
    for name in (METRIC_ENV, RESULT_ENV, STORAGE_ENV, STUDY_ENV, TRIAL_ID_ENV, PRUNER_ENV):
        monkeypatch.delenv(name, raising=False)
    assert sweep_trial_callback() is None
    monkeypatch.setenv(METRIC_ENV, "val/acc")
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///x.db")
    monkeypatch.setenv(TRIAL_ID_ENV, "7")
    monkeypatch.setenv(PRUNER_ENV, '{"min_resource": 2}')
    callback = sweep_trial_callback()
    assert (callback.metric, callback.storage, callback.trial_id) == (
        "val/acc",
        "sqlite:///x.db",
        7,
    )
    assert callback.pruner_settings == {"min_resource": 2}


def test_every_ddp_rank_starts_with_the_same_values(monkeypatch):
    """Lightning starts ranks 1.. by re-running the trial's own command line (its launcher's
    command below), so they parse exactly the values the sweep sampled once."""
    from lightning.fabric.strategies.launchers.subprocess_script import _basic_subprocess_cmd

    values = {"model.lr": 0.0012, "data.batch_size": 64, "model.hidden": [32, 16], "x.on": True}
    command = trial_command("experiments/vision/mnist_mlp.yaml", values)
    assert command[0] == trial_process.litlab_executable()
    assert command[-4:] == [
        "--model.lr=0.0012",
        "--data.batch_size=64",
        "--model.hidden=[32, 16]",
        "--x.on=true",
    ]
    assert value_arguments(values) == command[-4:]
    # In the trial process (the litlab script, run as a file), rank 0's argv is the command.
    import __main__

    monkeypatch.setattr(__main__, "__spec__", None)
    monkeypatch.setattr(sys, "argv", command)
    rank_command = _basic_subprocess_cmd()
    assert rank_command[1:] == command
