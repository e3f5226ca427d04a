"""The Optuna sweep loop with trials faked (no processes): the count is a total that a rerun
resumes to, Ctrl-C and crashes queue the cut trials again with their values, workers share
the study, and a study is never mixed with another sweep file."""

import _thread
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from litlab.app.runs import RUN_DIR_ENV_VAR
from litlab.app.sweeps import optuna_backend
from litlab.app.sweeps.optuna_backend import (
    RETRY_OF_ATTR,
    VALUES_ATTR,
    Outcome,
    StudyLoop,
    TrialRunner,
    open_study,
    progress,
)
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import load_sweep
from litlab.app.sweeps.trial_protocol import (
    METRIC_ENV,
    PRUNER_ENV,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ID_ENV,
    TrialResult,
)
from litlab.core.errors import LitlabError

# The tests ask for trials themselves, outside the sweep loop that records heartbeats.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

SWEEP = """\
program: exp.yaml
method: random
metric: {name: val/loss, goal: minimize}
parameters:
  model.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
  data.batch_size: {values: [16, 32]}
"""


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(optuna_backend, "WAIT_POLL_S", 0.05)


@pytest.fixture
def sweep(in_tmp_dir):
    (in_tmp_dir / "exp.yaml").write_text("{}\n")
    (in_tmp_dir / "s.sweep.yaml").write_text(SWEEP)
    spec = load_sweep(in_tmp_dir / "s.sweep.yaml")
    space = OptunaSpace(spec)
    storage = f"sqlite:///{in_tmp_dir / 'study.db'}"
    return spec, space, storage


class FakeTrials:
    """Records each trial's values; its loss is the learning rate."""

    def __init__(self, outcome=None):
        self.values = []
        self.outcome = outcome or (
            lambda number, values, stop: Outcome(TrialState.COMPLETE, values["model.lr"])
        )
        self.lock = threading.Lock()

    def __call__(self, trial, values, stop):
        with self.lock:
            self.values.append(values)
        return self.outcome(trial.number, values, stop)


def run_loop(sweep, count, execute, workers=1):
    spec, space, storage = sweep
    study = open_study(spec, space, storage, seed=0)
    interrupted = StudyLoop(study, space, count, workers, execute).run()
    return study, interrupted


def test_count_is_a_total_that_a_rerun_resumes_to(sweep):
    first = FakeTrials()
    study, interrupted = run_loop(sweep, 2, first)
    assert not interrupted
    assert len(first.values) == 2
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.trials[0].user_attrs[VALUES_ATTR] == first.values[0]
    assert study.trials[0].value == first.values[0]["model.lr"]

    again = FakeTrials()
    study, _ = run_loop(sweep, 3, again)
    assert len(again.values) == 1  # only the missing trial
    assert progress(study).finished == 3
    nothing = FakeTrials()
    run_loop(sweep, 3, nothing)
    assert nothing.values == []


def test_ctrl_c_queues_the_running_trial_again_with_its_values(sweep):
    def second_is_cut(number, values, stop):
        if number == 1:
            _thread.interrupt_main()  # Ctrl-C reaches the sweep's main thread
            assert stop.wait(10)
            return Outcome(TrialState.FAIL, interrupted=True)
        return Outcome(TrialState.COMPLETE, values["model.lr"])

    cut = FakeTrials(second_is_cut)
    study, interrupted = run_loop(sweep, 3, cut)
    assert interrupted
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert study.trials[2].user_attrs[RETRY_OF_ATTR] == 1
    assert progress(study).finished == 1  # the cut trial does not count

    resumed = FakeTrials()
    study, interrupted = run_loop(sweep, 3, resumed)
    assert not interrupted
    assert resumed.values[0] == cut.values[1]  # the cut trial first, with its values
    assert len(resumed.values) == 2
    assert progress(study).finished == 3


def test_a_trial_left_running_by_a_crash_runs_again(sweep, monkeypatch):
    monkeypatch.setattr(optuna_backend, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(optuna_backend, "HEARTBEAT_GRACE_S", 1)
    spec, space, storage = sweep
    study = open_study(spec, space, storage)
    crashed = study.ask(space.distributions())  # its sweep process died: RUNNING for ever
    study._storage.record_heartbeat(crashed._trial_id)
    time.sleep(2.5)  # the database clock counts whole seconds

    again = FakeTrials()
    study, _ = run_loop(sweep, 1, again)
    assert again.values == [space.values(crashed.params)]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]
    assert progress(study).finished == 1


def test_workers_share_the_study_and_stop_at_the_count(sweep):
    running, most = 0, 0
    lock = threading.Lock()

    def slow(number, values, stop):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return Outcome(TrialState.COMPLETE, values["model.lr"])

    trials = FakeTrials(slow)
    study, _ = run_loop(sweep, 5, trials, workers=3)
    assert len(trials.values) == 5
    assert most >= 2
    assert len(study.trials) == 5


def test_failed_and_pruned_trials_count_as_finished(sweep):
    def mixed(number, values, stop):
        return [Outcome(TrialState.FAIL, note="exit code 1"), Outcome(TrialState.PRUNED)][
            number % 2
        ]

    study, _ = run_loop(sweep, 3, FakeTrials(mixed))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.PRUNED, TrialState.FAIL]
    assert study.trials[0].user_attrs["note"] == "exit code 1"


def test_reaching_the_metric_target_ends_the_sweep(sweep, in_tmp_dir):
    (in_tmp_dir / "s.sweep.yaml").write_text(
        SWEEP.replace("goal: minimize", "goal: minimize, target: 0.5")
    )
    spec = load_sweep(in_tmp_dir / "s.sweep.yaml")
    target_met = FakeTrials(lambda number, values, stop: Outcome(TrialState.COMPLETE, 0.4))
    run_loop((spec, OptunaSpace(spec), sweep[2]), 10, target_met)
    assert len(target_met.values) == 1


def test_a_trial_runner_error_stops_the_sweep(sweep):
    def broken(number, values, stop):
        raise ValueError("bug in the runner")

    with pytest.raises(ValueError, match="bug in the runner"):
        run_loop(sweep, 2, FakeTrials(broken))


def test_a_changed_sweep_file_is_not_mixed_into_its_study(sweep, in_tmp_dir):
    spec, space, storage = sweep
    open_study(spec, space, storage)
    (in_tmp_dir / "s.sweep.yaml").write_text(SWEEP.replace("[16, 32]", "[16, 64]"))
    changed = load_sweep(in_tmp_dir / "s.sweep.yaml")
    with pytest.raises(
        LitlabError, match=r"another version of .*s.sweep.yaml \(parameters differ\)"
    ):
        open_study(changed, OptunaSpace(changed), storage)


def test_summary_of_a_study_that_does_not_exist(sweep):
    spec, space, storage = sweep
    with pytest.raises(LitlabError, match=r"no study named s in .*run the sweep first"):
        open_study(spec, space, storage, create=False)
    assert optuna.study.get_all_study_names(storage) == []


def test_a_trial_process_gets_the_sweeps_environment(sweep, in_tmp_dir):
    spec, space, storage = sweep
    trial = open_study(spec, space, storage).ask(space.distributions())
    runner = TrialRunner(spec, space, storage, in_tmp_dir / "trials")
    env = runner.environment(trial, in_tmp_dir / "run", in_tmp_dir / "run" / "result.json")
    assert env[RUN_DIR_ENV_VAR] == str(in_tmp_dir / "run")
    assert env[METRIC_ENV] == "val/loss"
    assert (env[STORAGE_ENV], env[STUDY_ENV], env[TRIAL_ID_ENV]) == (
        storage,
        "s",
        str(trial._trial_id),
    )
    assert env["WANDB_RUN_GROUP"] == "s"  # the trials' W&B runs are grouped by the sweep
    assert PRUNER_ENV not in env  # no early_terminate


def test_how_a_trial_process_ended_becomes_its_state(sweep, tmp_path):
    spec, space, storage = sweep
    runner = TrialRunner(spec, space, storage, tmp_path)
    log = tmp_path / "output.log"

    def result(**changes):
        fields = dict(metric="val/loss", value=0.5, pruned=False, validations=2, epochs=2,
                      global_step=8, logged_metrics=["train/loss", "val/loss"])  # fmt: skip
        return TrialResult(**{**fields, **changes})

    assert runner._outcome(0, False, result(), log) == Outcome(TrialState.COMPLETE, 0.5)
    pruned = runner._outcome(0, False, result(pruned=True, validations=1), log)
    assert (pruned.state, pruned.note) == (TrialState.PRUNED, "pruned after 1 validations")
    never = runner._outcome(0, False, result(value=None, logged_metrics=["train/loss"]), log)
    assert never.state == TrialState.FAIL
    assert never.note == "val/loss was never logged (logged: train/loss)"
    assert runner._outcome(0, False, result(value=float("nan")), log).state == TrialState.FAIL
    crashed = runner._outcome(1, False, None, log)
    assert (crashed.state, crashed.interrupted) == (TrialState.FAIL, False)
    assert crashed.note == f"exit code 1, see {log}"
    assert runner._outcome(1, True, None, log).interrupted


def test_a_sweep_whose_first_trials_all_fail_stops(sweep):
    failing = FakeTrials(lambda number, values, stop: Outcome(TrialState.FAIL, note="exit code 1"))
    with pytest.raises(LitlabError, match="the first 3 trials of the sweep all failed"):
        run_loop(sweep, 10, failing)
    assert len(failing.values) == 3
    # Fixed, the same command goes on: the earlier failures count as finished trials.
    fixed = FakeTrials()
    run_loop(sweep, 5, fixed)
    assert len(fixed.values) == 2


def test_the_sweep_code_reads_no_private_attribute_of_another_object():
    """Optuna's private attributes (``study._storage``, ``trial._trial_id``) move between
    releases: the sweep code uses its public API (and its own ``self._...`` only)."""
    import ast
    from pathlib import Path

    sweeps = Path(optuna_backend.__file__).parent
    found = []
    for path in sorted(sweeps.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert found == []
