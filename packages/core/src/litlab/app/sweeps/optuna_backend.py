"""The Optuna backend: a study in a database, and ``Study.optimize`` running trial processes.

Files, under ``<runs_root>/sweeps/<sweep name>/``::

    study.db                                  the Optuna study (SQLite; --storage picks
                                              another database, e.g. PostgreSQL)
    trials/<experiment>/<time>-<id>/          each trial's run folder: config.yaml,
                                              checkpoints/, wandb/, output.log (its output),
                                              sweep_trial.json (its result)

``count`` is the number of finished trials the study should end up with: running the same
command again after a crash or a Ctrl-C runs only the missing ones. A trial the sweep stopped
(Ctrl-C) is marked FAIL and queued again with the same values; one whose sweep process died
(its heartbeat, which ``Study.optimize`` records, stopped) is failed by Optuna's
``fail_stale_trials`` in the next sweep that uses the study and queued again by :func:`requeue`.
Several sweep processes, on one machine or many, may share a study: each asks for its next
trial under the same count.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from litlab.app.runs import RUN_DIR_ENV_VAR, new_run_dir, new_run_id
from litlab.app.sweeps.optuna_space import OptunaSpace
from litlab.app.sweeps.spec import SweepSpec
from litlab.app.sweeps.trial_process import log_tail, run_process, trial_command
from litlab.app.sweeps.trial_protocol import (
    METRIC_ENV,
    PRUNER_ENV,
    RESULT_ENV,
    RESULT_FILE_NAME,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ID_ENV,
    TrialResult,
)
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

# A trial's sweep process writes its heartbeat this often; a running trial whose heartbeat is
# older than the grace period is taken for dead (its sweep crashed) and queued again.
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 40
# How often an idle worker looks again while other trials (maybe elsewhere) are running.
WAIT_POLL_S = 2.0
# A sweep whose trials all fail stops after this many (a bad config, not bad luck).
MAX_FAILURES_BEFORE_SUCCESS = 3
# How often the main thread looks up from waiting (so that Ctrl-C reaches it).
MAIN_POLL_S = 0.5
# Trial user attributes.
VALUES_ATTR = "values"
RUN_DIR_ATTR = "run_dir"
NOTE_ATTR = "note"
RETRY_OF_ATTR = "retry_of"
# Study user attribute: the sweep file's fingerprint, so a changed file is not mixed in.
SWEEP_ATTR = "litlab_sweep"
# The package of a database driver SQLAlchemy imports, where the two names differ.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
}


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_study(
    spec: SweepSpec,
    space: OptunaSpace,
    storage_url: str,
    seed: int | None = None,
    create: bool = True,
) -> optuna.Study:
    """The sweep's study in ``storage_url``: created, or loaded to resume.

    A study made from a different file (other program, method, metric, parameters or early
    termination) is an error rather than a mix of two searches.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    no_study = LitlabError(
        f"no study named {spec.name} in {storage_url}: run the sweep first (litlab sweep "
        f"{spec.path}), or give the --storage and --runs_root it ran with"
    )
    if storage_url.startswith("sqlite:///"):
        database = Path(storage_url.removeprefix("sqlite:///"))
        if not create and not database.is_file():
            raise no_study
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # The heartbeat is an experimental Optuna feature.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                storage_url,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=HEARTBEAT_GRACE_S,
                heartbeat_stale_trial_callback=requeue,
            )
        if not create and spec.name not in optuna.study.get_all_study_names(storage):
            raise no_study
        study = optuna.create_study(
            storage=storage,
            study_name=spec.name,
            sampler=space.sampler(seed),
            pruner=space.pruner(),
            direction=space.direction,
            load_if_exists=True,
        )
    except ImportError as err:
        missing = getattr(err.__cause__ or err.__context__, "name", None) or "its driver"
        package = DRIVER_PACKAGES.get(missing, missing)
        raise LitlabError(
            f"--storage {storage_url}: the database driver {missing} is not installed: "
            f"uv pip install '{package}' (or name another driver in the URL, as "
            f"postgresql+psycopg2://...)"
        ) from err
    except Exception as err:
        if type(err).__module__.startswith("sqlalchemy"):
            raise LitlabError(f"cannot open the study storage {storage_url}: {err}") from err
        raise
    fingerprint = json.loads(json.dumps(spec.fingerprint(), default=str))
    stored = study.user_attrs.get(SWEEP_ATTR)
    if stored is None:
        study.set_user_attr(SWEEP_ATTR, fingerprint)
    elif stored != fingerprint:
        changed = [key for key in fingerprint if fingerprint[key] != stored.get(key)]
        raise LitlabError(
            f"the study {spec.name} in {storage_url} was made from another version of "
            f"{spec.path} ({', '.join(changed)} differ): give the sweep a new name: in the "
            f"file, or remove the study to start again"
        )
    return study


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's values again (the next ask takes them first): the storage's
    heartbeat-stale callback, and what becomes of a trial that Ctrl-C stopped.

    Not Optuna's ``RetryHeartbeatStaleTrialCallback``: it copies the failed trial's user
    attributes (its run folder, its failure note) onto the retry and marks the retry only in
    system attributes, where :func:`progress` and the summary look for ``retry_of``.
    """
    study.enqueue_trial(
        trial.params,
        user_attrs={RETRY_OF_ATTR: trial.number, VALUES_ATTR: trial.user_attrs.get(VALUES_ATTR)},
    )


@dataclass(frozen=True)
class Progress:
    finished: int
    running: int
    failed: int
    best: float | None


def progress(study: optuna.Study) -> Progress:
    """Finished trials (complete, pruned or failed, not counting those queued again) and
    running ones, across every process sharing the study."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF_ATTR) for t in trials}
    finished = sum(t.state.is_finished() and t.number not in retried for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    failed = sum(t.state == TrialState.FAIL and t.number not in retried for t in trials)
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = (max if maximize else min)(complete) if complete else None
    return Progress(finished, running, failed, best)


@dataclass
class Outcome:
    """How a trial ended."""

    state: TrialState
    value: float | None = None
    note: str = ""
    interrupted: bool = False


Execute = Callable[[optuna.Trial, dict[str, Any], threading.Event], Outcome]


class TrialFailed(Exception):
    """A trial that ended without a value: ``Study.optimize`` marks it FAIL and goes on."""


class StudyLoop:
    """Optuna's ``Study.optimize`` with ``workers`` threads (``n_jobs``), each asking for a
    trial, running it and telling its outcome, until the study has ``count`` finished trials (or
    the metric's target is reached); Optuna records each running trial's heartbeat and fails
    the stale ones of dead sweeps (:func:`requeue` queues them again)."""

    def __init__(
        self,
        study: optuna.Study,
        space: OptunaSpace,
        count: int,
        workers: int,
        execute: Execute,
    ) -> None:
        self.study = study
        self.space = space
        self.count = count
        self.workers = workers
        self.execute = execute
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        # Trials stopped by Ctrl-C (by number): queued again once Optuna has marked them FAIL.
        self._interrupted: set[int] = set()
        # This process's trials (a resumed study's earlier failures may have been fixed).
        self._failed = 0
        self._succeeded = 0

    def run(self) -> bool:
        """Run the trials; True when Ctrl-C interrupted the sweep (finished trials are kept,
        the running ones are queued again)."""
        done = threading.Event()

        def sweep() -> None:
            try:
                self._sweep()
            except BaseException as err:
                self._error(err)
            finally:
                done.set()

        # Study.optimize runs in a thread of its own, so that the main thread is free to take
        # Ctrl-C and stop the trials cleanly.
        threading.Thread(target=sweep, name="sweep", daemon=True).start()
        interrupted = False
        # An Event, not Thread.join: Python 3.11 takes a thread for finished when Ctrl-C
        # interrupts a join.
        while not done.is_set():
            try:
                done.wait(MAIN_POLL_S)
            except KeyboardInterrupt:
                if interrupted:
                    log.info("Still stopping the running trials (at most a minute)...")
                    continue
                interrupted = True
                log.info("Ctrl-C: stopping the running trials; they run again on resume...")
                self.stop.set()
        if self._errors and not interrupted:
            raise self._errors[0]
        return interrupted

    def _sweep(self) -> None:
        verbosity = optuna.logging.get_verbosity()
        # litlab logs each trial's outcome itself; Optuna would add a traceback per failure.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            while not self.stop.is_set():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
                now = progress(self.study)
                if self._target_reached(now) or now.finished >= self.count:
                    return
                todo = self.count - now.finished - now.running
                if todo <= 0:
                    # Trials still running (here, on other machines, or dead and not yet seen
                    # to be) may fail and be queued again: wait for them.
                    self.stop.wait(WAIT_POLL_S)
                    continue
                self.study.optimize(
                    self._objective,
                    n_trials=todo,
                    n_jobs=min(self.workers, todo),
                    catch=(TrialFailed,),
                    callbacks=[self._after_trial],
                )
                if self._errors:
                    return
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _objective(self, trial: optuna.Trial) -> float:
        values = self.space.suggest(trial)
        trial.set_user_attr(VALUES_ATTR, values)
        if self.stop.is_set():
            # Asked while the sweep was stopping: queued again without running.
            outcome = Outcome(TrialState.FAIL, note="stopped by Ctrl-C", interrupted=True)
        else:
            try:
                outcome = self.execute(trial, values, self.stop)
            except BaseException as err:
                self._error(err)
                raise
        with self._lock:
            if outcome.state == TrialState.FAIL and not outcome.interrupted:
                self._failed += 1
            elif outcome.state != TrialState.FAIL:
                self._succeeded += 1
            if outcome.interrupted:
                self._interrupted.add(trial.number)
        if outcome.note:
            trial.set_user_attr(NOTE_ATTR, outcome.note)
        if outcome.state == TrialState.COMPLETE:
            assert outcome.value is not None
            return outcome.value
        if outcome.state == TrialState.PRUNED:
            raise optuna.TrialPruned(outcome.note)
        raise TrialFailed(outcome.note)

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Called by ``Study.optimize`` after each trial of this process: queue a stopped trial
        again, and stop asking once the study has its count (counting the running trials of
        every process) or the sweep stops."""
        if trial.number in self._interrupted:
            requeue(study, trial)
        if self._failed >= MAX_FAILURES_BEFORE_SUCCESS and self._succeeded == 0:
            self._error(
                LitlabError(
                    f"the first {self._failed} trials of the sweep all failed, so it stops: "
                    "the end of their output is above, their run folders in the trial table"
                )
            )
        now = progress(study)
        if (
            self.stop.is_set()
            or self._target_reached(now)
            or now.finished + now.running >= self.count
        ):
            study.stop()

    def _error(self, err: BaseException) -> None:
        """Stop the sweep (the other running trials are queued again) and raise ``err``."""
        with self._lock:
            self._errors.append(err)
        self.stop.set()

    def _target_reached(self, now: Progress) -> bool:
        target = self.space.spec.target
        if target is None or now.best is None:
            return False
        return now.best >= target if self.space.spec.maximize else now.best <= target


class TrialRunner:
    """Runs a trial as a ``litlab fit`` process in its own run folder, reporting to the study."""

    def __init__(
        self, spec: SweepSpec, space: OptunaSpace, storage_url: str, trials_root: Path
    ) -> None:
        self.spec = spec
        self.space = space
        self.storage_url = storage_url
        self.trials_root = trials_root
        self._storage: optuna.storages.BaseStorage | None = None

    def trial_id(self, trial: optuna.Trial) -> int:
        """The storage's id of a trial (what ``optuna.trial.Trial`` is built from in the trial
        process), looked up through the storage API: Optuna's trial objects keep it private."""
        if self._storage is None:
            self._storage = optuna.storages.RDBStorage(self.storage_url)
        study_id = self._storage.get_study_id_from_name(self.spec.name)
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)

    def __call__(
        self, trial: optuna.Trial, values: dict[str, Any], stop: threading.Event
    ) -> Outcome:
        run_dir = new_run_dir(self.trials_root, experiment_name(self.spec), new_run_id())
        run_dir.mkdir(parents=True)
        trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))
        result_path = run_dir / RESULT_FILE_NAME
        log_path = run_dir / "output.log"
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        log.info("Trial %d: %s (output: %s)", trial.number, shown, log_path)
        started = time.monotonic()
        code, interrupted = run_process(
            trial_command(self.spec.program, values),
            self.environment(trial, run_dir, result_path),
            log_path,
            stop,
        )
        result = TrialResult.read(result_path)
        outcome = self._outcome(code, interrupted, result, log_path)
        value = "" if outcome.value is None else f": {self.spec.metric} = {outcome.value:.6g}"
        note = f" ({outcome.note})" if outcome.note else ""
        log.info(
            "Trial %d %s%s%s in %.0f s",
            trial.number, outcome.state.name, value, note, time.monotonic() - started,
        )  # fmt: skip
        if outcome.state == TrialState.FAIL and not interrupted:
            log.info("The end of trial %d's output:\n%s", trial.number, log_tail(log_path))
        return outcome

    def environment(self, trial: optuna.Trial, run_dir: Path, result_path: Path) -> dict[str, str]:
        env = {
            **os.environ,
            RUN_DIR_ENV_VAR: str(run_dir),
            METRIC_ENV: self.spec.metric,
            RESULT_ENV: str(result_path),
            STORAGE_ENV: self.storage_url,
            STUDY_ENV: self.spec.name,
            TRIAL_ID_ENV: str(self.trial_id(trial)),
            # Every trial's W&B run is in the sweep's group.
            "WANDB_RUN_GROUP": self.spec.name,
        }
        if self.space.pruner_settings is not None:
            env[PRUNER_ENV] = json.dumps(self.space.pruner_settings)
        if self.spec.project:
            env["WANDB_PROJECT"] = self.spec.project
        if self.spec.entity:
            env["WANDB_ENTITY"] = self.spec.entity
        return env

    def _outcome(
        self, code: int, interrupted: bool, result: TrialResult | None, log_path: Path
    ) -> Outcome:
        if result is None or code != 0:
            if interrupted:
                return Outcome(TrialState.FAIL, note="stopped by Ctrl-C", interrupted=True)
            return Outcome(TrialState.FAIL, note=f"exit code {code}, see {log_path}")
        if result.pruned:
            return Outcome(
                TrialState.PRUNED,
                result.value,
                note=f"pruned after {result.validations} validations",
            )
        if result.value is None:
            logged = ", ".join(result.logged_metrics) or "nothing"
            return Outcome(
                TrialState.FAIL, note=f"{self.spec.metric} was never logged (logged: {logged})"
            )
        if not math.isfinite(result.value):
            return Outcome(
                TrialState.FAIL, result.value, note=f"{self.spec.metric} is {result.value}"
            )
        return Outcome(TrialState.COMPLETE, result.value)


def experiment_name(spec: SweepSpec) -> str:
    """The experiment name ``litlab fit -c <program>`` gives its runs."""
    try:
        config = yaml.safe_load(Path(spec.program).read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    given = config.get("experiment") if isinstance(config, dict) else None
    return given if isinstance(given, str) and given else Path(spec.program).stem
