"""What a sweep found: a table of its trials, the best trial's config and two plots.

Written into the sweep's folder at the end of every sweep and by ``litlab sweep FILE
--summary``::

    trials.csv                    number, state, the metric, duration, run folder, values
    best.yaml                     the experiment config with the best trial's values:
                                  litlab fit -c <sweep folder>/best.yaml trains it again
    optimization_history.png      the metric of each trial and the best so far
    param_importances.png         Optuna's fANOVA importances (from 2 complete trials and
                                  2 swept parameters on)

The table is printed, and a W&B run of job type ``sweep-summary`` in the sweep's group gets
the table and the plots (offline when there is no login; ``WANDB_MODE=disabled`` skips it).
"""

from __future__ import annotations

import csv
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from litlab.app.sweeps.best_config import write_config
from litlab.app.sweeps.optuna_backend import (
    NOTE_ATTR,
    RETRY_OF_ATTR,
    RUN_DIR_ATTR,
    VALUES_ATTR,
    experiment_name,
)
from litlab.app.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)

BEST_CONFIG = "best.yaml"
TRIALS_CSV = "trials.csv"
HISTORY_PNG = "optimization_history.png"
IMPORTANCES_PNG = "param_importances.png"


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    duration_s: float | None
    values: dict[str, Any]
    run_dir: str
    note: str


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    trials = study.get_trials(deepcopy=False)
    retried_as = {
        t.user_attrs[RETRY_OF_ATTR]: t.number for t in trials if RETRY_OF_ATTR in t.user_attrs
    }
    rows = []
    for trial in trials:
        note = trial.user_attrs.get(NOTE_ATTR, "")
        if trial.number in retried_as:
            note = f"{note}; run again as trial {retried_as[trial.number]}".lstrip("; ")
        rows.append(
            TrialRow(
                number=trial.number,
                state=trial.state.name,
                value=trial.value if trial.state == TrialState.COMPLETE else _last(trial),
                duration_s=trial.duration.total_seconds() if trial.duration else None,
                values=trial.user_attrs.get(VALUES_ATTR) or dict(trial.params),
                run_dir=trial.user_attrs.get(RUN_DIR_ATTR, ""),
                note=note,
            )
        )
    return rows


def format_table(rows: list[TrialRow], metric: str) -> str:
    keys = _value_keys(rows)
    header = ["trial", "state", metric, "time (s)", *keys, "note"]
    lines = [
        [
            str(row.number),
            row.state,
            _show(row.value),
            "" if row.duration_s is None else f"{row.duration_s:.0f}",
            *(_show(row.values.get(key)) for key in keys),
            row.note,
        ]
        for row in rows
    ]
    if not any(row.note for row in rows):
        header, lines = header[:-1], [line[:-1] for line in lines]
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    )


def write_csv(path: Path, rows: list[TrialRow], metric: str) -> None:
    keys = _value_keys(rows)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", "state", metric, "duration_s", *keys, "run_dir", "note"])
        for row in rows:
            writer.writerow(
                [
                    row.number,
                    row.state,
                    "" if row.value is None else row.value,
                    "" if row.duration_s is None else f"{row.duration_s:.1f}",
                    *(row.values.get(key, "") for key in keys),
                    row.run_dir,
                    row.note,
                ]
            )


def summarize(spec: SweepSpec, study: optuna.Study, sweep_dir: Path) -> Path | None:
    """Print the table and write the summary files; return best.yaml's path (None before any
    trial completed)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    log.info("Sweep %s, %d trials:\n%s", spec.name, len(rows), format_table(rows, spec.metric))
    write_csv(sweep_dir / TRIALS_CSV, rows, spec.metric)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    best_path = None
    if complete:
        best = study.best_trial
        best_path = sweep_dir / BEST_CONFIG
        run_dir = best.user_attrs.get(RUN_DIR_ATTR, "")
        write_config(
            best_path,
            spec.program,
            best.user_attrs.get(VALUES_ATTR) or best.params,
            experiment_name(spec),
            header=[
                f"The best trial of the sweep {spec.name} ({spec.path}): trial {best.number}, "
                f"{spec.metric} = {best.value:.6g}.",
                *([f"Its run: {run_dir}"] if run_dir else []),
                f"Train it again: litlab fit -c {best_path}",
            ],
        )
        log.info(
            "Best: trial %d, %s = %.6g, run %s\nIts config: %s (litlab fit -c %s)",
            best.number, spec.metric, best.value, run_dir or "?", best_path, best_path,
        )  # fmt: skip
    else:
        log.info("No trial has completed yet: no %s.", BEST_CONFIG)
    images = write_plots(study, sweep_dir, spec.metric)
    log_to_wandb(spec, sweep_dir, rows, images)
    return best_path


def write_plots(study: optuna.Study, sweep_dir: Path, metric: str) -> list[Path]:
    """The optimisation history and, where it means something, the parameter importances."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        log.info("No plots: no trial has completed.")
        return []
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    images = []
    with warnings.catch_warnings():
        # Optuna's matplotlib plots are marked experimental.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = optuna_plots.plot_optimization_history(study, target_name=metric)
        images.append(_save(axes, sweep_dir / HISTORY_PNG, plt))
        swept = {name for t in complete for name in t.params}
        if len(complete) < 2 or len(swept) < 2:
            log.info(
                "No %s: it needs 2 completed trials and 2 swept parameters (%d and %d here).",
                IMPORTANCES_PNG, len(complete), len(swept),
            )  # fmt: skip
        else:
            axes = optuna_plots.plot_param_importances(study, target_name=metric)
            images.append(_save(axes, sweep_dir / IMPORTANCES_PNG, plt))
    return images


def log_to_wandb(
    spec: SweepSpec, sweep_dir: Path, rows: list[TrialRow], images: list[Path]
) -> None:
    """The table and plots as a W&B run in the sweep's group (offline without a login)."""
    from litlab.app.sweeps.wandb_backend import sweep_entity, sweep_project
    from litlab.app.wandb_login import OFFLINE_MODES, resolve_wandb_mode

    mode = resolve_wandb_mode(None)
    if mode == "disabled":
        return
    import wandb

    keys = _value_keys(rows)
    table = wandb.Table(
        columns=["trial", "state", spec.metric, "duration_s", *keys, "run_dir"],
        data=[
            [
                r.number,
                r.state,
                r.value,
                r.duration_s,
                *(_show(r.values.get(k)) for k in keys),
                r.run_dir,
            ]
            for r in rows
        ],
    )
    run = wandb.init(
        project=sweep_project(spec),
        entity=sweep_entity(spec),
        group=spec.name,
        job_type="sweep-summary",
        name=f"{spec.name} summary",
        dir=str(sweep_dir),
        # WANDB_MODE's value as the user set it (wandb accepts its own aliases, e.g. dryrun).
        mode=mode,  # type: ignore[arg-type]
        config={"sweep": spec.raw},
        settings=wandb.Settings(silent=True),
    )
    run.log({"trials": table, **{image.stem: wandb.Image(str(image)) for image in images}})
    run.finish()
    if mode in OFFLINE_MODES:
        log.info(
            "Sweep summary saved offline in W&B. Upload it with:\n  wandb sync %s",
            run.settings.sync_dir,
        )


def _save(axes: Any, path: Path, plt: Any) -> Path:
    figure = axes.figure
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def _last(trial: optuna.trial.FrozenTrial) -> float | None:
    """A pruned trial's last reported value."""
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def _value_keys(rows: list[TrialRow]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row.values))
    return list(keys)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
