"""What a sweep leaves behind: best.yaml (a config `litlab fit -c` reads back with the best
values), trials.csv, the table, the plots, and a W&B summary run in the sweep's group."""

import csv
import io
import logging
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from wandb_records import read_records

from litlab.app.cli import main
from litlab.app.sweeps.best_config import config_with_values, set_dotted
from litlab.app.sweeps.optuna_backend import RUN_DIR_ATTR, VALUES_ATTR
from litlab.app.sweeps.spec import load_sweep
from litlab.app.sweeps.summary import format_table, summarize, trial_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"
PNG_MAGIC = b"\x89PNG"


def test_dotted_keys_land_where_the_parser_reads_them():
    config = {
        "model": {"class_path": "a.Task", "init_args": {"network": {"class_path": "a.Net"}}},
        "data": {"class_path": "a.Data"},
        "trainer": {"max_epochs": 5},
    }
    set_dotted(config, "model.lr", 0.1)
    set_dotted(config, "model.network.init_args.width", 8)
    set_dotted(config, "model.network.depth", 3)
    set_dotted(config, "data.batch_size", 64)
    set_dotted(config, "trainer.max_epochs", 2)
    set_dotted(config, "trainer.limit_val_batches", 4)
    assert config == {
        "model": {
            "class_path": "a.Task",
            "init_args": {
                "network": {"class_path": "a.Net", "init_args": {"width": 8, "depth": 3}},
                "lr": 0.1,
            },
        },
        "data": {"class_path": "a.Data", "init_args": {"batch_size": 64}},
        "trainer": {"max_epochs": 2, "limit_val_batches": 4},
    }


def test_best_config_reads_back_with_the_best_values(tmp_path, monkeypatch):
    values = {
        "model.lr": 0.00042,
        "model.network.init_args.hidden_features": [64, 32],
        "data.batch_size": 256,
        "trainer.max_epochs": 2,
    }
    config = config_with_values(yaml.safe_load(MNIST_MLP.read_text()), values, "mnist_mlp")
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(sys, "argv", ["litlab"])
    output = io.StringIO()
    with redirect_stdout(output), pytest.raises(SystemExit):
        main(["fit", "-c", str(best), "--print_config"])
    parsed = yaml.safe_load(output.getvalue())
    assert parsed["model"]["init_args"]["lr"] == pytest.approx(0.00042)
    assert parsed["model"]["init_args"]["network"]["init_args"]["hidden_features"] == [64, 32]
    assert parsed["data"]["init_args"]["batch_size"] == 256
    assert parsed["trainer"]["max_epochs"] == 2
    assert parsed["experiment"] == "mnist_mlp"  # its runs go with the experiment's, not "best"
    # Everything else is the experiment's own.
    assert parsed["model"]["init_args"]["weight_decay"] == pytest.approx(0.05)


@pytest.fixture
def sweep(in_tmp_dir):
    (in_tmp_dir / "exp.yaml").write_text(
        "model:\n  class_path: a.Task\n  init_args: {lr: 0.1}\ntrainer: {max_epochs: 3}\n"
    )
    (in_tmp_dir / "s.sweep.yaml").write_text(
        "program: exp.yaml\nmethod: random\nmetric: {name: val/acc, goal: maximize}\n"
        "parameters:\n  model.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0}\n"
        "  data.batch_size: {values: [16, 32]}\n  trainer.max_epochs: {value: 3}\n"
    )
    return load_sweep(in_tmp_dir / "s.sweep.yaml")


def make_study(results):
    study = optuna.create_study(direction="maximize", study_name="s")
    distributions = {
        "model.lr": FloatDistribution(1e-6, 1.0, log=True),
        "data.batch_size": CategoricalDistribution([16, 32]),
    }
    for i, (state, value) in enumerate(results):
        params = {"model.lr": 10.0 ** -(i + 1), "data.batch_size": [16, 32][i % 2]}
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                intermediate_values={1: value} if value is not None else {},
                params=params,
                distributions=distributions,
                user_attrs={
                    VALUES_ATTR: {**params, "trainer.max_epochs": 3},
                    RUN_DIR_ATTR: f"runs/sweeps/s/trials/exp/run{i}",
                },
            )
        )
    return study


def test_summary_files(sweep, in_tmp_dir, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    study = make_study(
        [
            (TrialState.COMPLETE, 0.7),
            (TrialState.COMPLETE, 0.9),
            (TrialState.PRUNED, 0.1),
            (TrialState.FAIL, None),
            (TrialState.COMPLETE, 0.8),
        ]
    )
    sweep_dir = in_tmp_dir / "runs" / "sweeps" / "s"
    with caplog.at_level(logging.INFO, logger="litlab"):
        best = summarize(sweep, study, sweep_dir)

    assert best == sweep_dir / "best.yaml"
    text = best.read_text()
    assert text.startswith("# The best trial of the sweep s (")
    assert "trial 1, val/acc = 0.9." in text
    assert "runs/sweeps/s/trials/exp/run1" in text
    config = yaml.safe_load(text)
    assert config["model"]["init_args"]["lr"] == pytest.approx(0.01)  # trial 1's
    assert config["data"] == {"batch_size": 32}
    assert config["experiment"] == "exp"

    rows = list(csv.DictReader((sweep_dir / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    assert rows[1]["val/acc"] == "0.9"
    assert rows[2]["val/acc"] == "0.1"  # a pruned trial's last report
    assert rows[1]["model.lr"] == "0.01"
    assert rows[0]["run_dir"] == "runs/sweeps/s/trials/exp/run0"

    for name in ("optimization_history.png", "param_importances.png"):
        assert (sweep_dir / name).read_bytes().startswith(PNG_MAGIC), name
    assert (
        "trial  state     val/acc  time (s)  model.lr  data.batch_size  trainer.max_epochs"
        in caplog.text
    )


def test_no_importances_from_one_parameter_or_one_trial(sweep, in_tmp_dir, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    study = make_study([(TrialState.COMPLETE, 0.5)])
    with caplog.at_level(logging.INFO, logger="litlab"):
        summarize(sweep, study, in_tmp_dir / "out")
    assert (in_tmp_dir / "out" / "optimization_history.png").is_file()
    assert not (in_tmp_dir / "out" / "param_importances.png").exists()
    assert "it needs 2 completed trials and 2 swept parameters (1 and 2 here)" in caplog.text


def test_before_any_trial_completed(sweep, in_tmp_dir, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with caplog.at_level(logging.INFO, logger="litlab"):
        assert summarize(sweep, make_study([(TrialState.FAIL, None)]), in_tmp_dir / "out") is None
    assert "No trial has completed yet" in caplog.text
    assert (in_tmp_dir / "out" / "trials.csv").is_file()


def test_table_rounds_and_aligns():
    rows = trial_rows(make_study([(TrialState.COMPLETE, 0.123456), (TrialState.PRUNED, 0.5)]))
    table = format_table(rows, "val/acc").splitlines()
    assert table[1].split() == ["0", "COMPLETE", "0.1235", "0.1", "16", "3"]
    assert table[2].split() == ["1", "PRUNED", "0.5", "0.01", "32", "3"]


def test_the_summary_goes_to_a_wandb_run_in_the_sweeps_group(sweep, in_tmp_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep_dir = in_tmp_dir / "sweep"
    summarize(
        sweep, make_study([(TrialState.COMPLETE, 0.5), (TrialState.COMPLETE, 0.6)]), sweep_dir
    )
    (records,) = sweep_dir.glob("wandb/offline-run-*/run-*.wandb")
    runs = []
    for _ in range(100):  # W&B's service may still be writing the log of a finished run
        runs = [r.run for r in read_records(records) if r.WhichOneof("record_type") == "run"]
        if runs:
            break
        time.sleep(0.1)
    assert runs[0].run_group == "s"
    assert runs[0].job_type == "sweep-summary"
    files = {p.name for p in sweep_dir.glob("wandb/offline-run-*/files/media/**/*.png")}
    assert any(name.startswith("optimization_history") for name in files), files
