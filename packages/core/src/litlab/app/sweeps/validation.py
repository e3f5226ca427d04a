"""The checks a sweep passes before any trial runs, beyond the file's own (spec.py).

- Every swept key is a config key of the experiment, and its typical value parses: the
  experiment config is parsed in this process with the sweep's values (nothing is built).
- The metric is one the experiment logs: one batch of training and validation
  (``--trainer.fast_dev_run=1``, no logger) in a trial process, whose logged metrics must
  hold it. ``--no-preflight`` skips this one, for models slow to load.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import threading
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from litlab.app.runs import RUN_DIR_ENV_VAR
from litlab.app.sweeps.spec import SweepSpec
from litlab.app.sweeps.trial_process import log_tail, run_process, trial_command, value_arguments
from litlab.app.sweeps.trial_protocol import ALL_ENV, METRIC_ENV, RESULT_ENV, TrialResult
from litlab.core.errors import LitlabError

log = logging.getLogger(__name__)

PREFLIGHT_LOG = "preflight.log"


def check_config_keys(spec: SweepSpec, values: dict[str, Any]) -> None:
    """Parse ``litlab fit -c <program> --key=value ...``; an error names the sweep's key."""
    from litlab.app.cli import main

    argv = ["fit", "-c", spec.program, *value_arguments(values), "--print_config"]
    code: Any = 0
    # LightningCLI warns when it is given arguments while sys.argv holds others (the sweep's).
    sweep_argv, sys.argv = sys.argv, ["litlab"]
    try:
        with redirect_stdout(io.StringIO()):
            main(argv)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = sweep_argv
    if code in (None, 0):
        return
    message = str(code).removeprefix("litlab: error: ")
    named = set(re.findall(r"'([^']+)'", message))
    for key in spec.parameters:
        if _bare(key) in {_bare(name) for name in named}:
            raise spec.error(f"parameters.{key}", f"{spec.program} does not take it: {message}")
    raise LitlabError(f"{spec.path}: {spec.program} with the sweep's values: {message}")


def check_metric_logged(spec: SweepSpec, values: dict[str, Any], sweep_dir: Path) -> None:
    """Train and validate one batch with ``values``; the sweep's metric must be logged."""
    log_path = sweep_dir / PREFLIGHT_LOG
    log.info(
        "Preflight: one batch of %s, to check that it logs %s (--no-preflight skips this)...",
        spec.program, spec.metric,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="litlab-preflight-") as scratch:
        result_path = Path(scratch) / "result.json"
        env = {key: value for key, value in os.environ.items() if key not in ALL_ENV}
        env.update(
            {
                METRIC_ENV: spec.metric,
                RESULT_ENV: str(result_path),
                RUN_DIR_ENV_VAR: str(Path(scratch) / "run"),
            }
        )
        command = trial_command(spec.program, values)
        command += ["--trainer.fast_dev_run=1", "--trainer.logger=false"]
        code, _ = run_process(command, env, log_path, threading.Event())
        result = TrialResult.read(result_path)
    if code != 0 or result is None:
        raise LitlabError(
            f"{spec.path}: one batch of {spec.program} with the sweep's typical values failed "
            f"(exit code {code}); the end of its output ({log_path}):\n{log_tail(log_path)}"
        )
    if spec.metric not in result.logged_metrics:
        logged = ", ".join(result.logged_metrics) or "nothing"
        raise spec.error(
            "metric.name",
            f"{spec.program} never logs {spec.metric!r}; in one batch of training and "
            f"validation it logged: {logged}",
        )


def _bare(key: str) -> str:
    """A key without ``init_args`` levels: ``model.init_args.lr`` and ``model.lr`` are one."""
    return ".".join(part for part in key.split(".") if part != "init_args")
