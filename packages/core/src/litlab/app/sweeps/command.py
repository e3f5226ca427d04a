"""``litlab sweep FILE``: run a sweep file on W&B or locally with Optuna (see docs/sweeps.md)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from litlab.core.errors import LitlabError
from litlab.core.launch_form import as_launched

if TYPE_CHECKING:
    from litlab.app.sweeps.optuna_space import OptunaSpace
    from litlab.app.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)

# Optuna and matplotlib are litlab-core's `sweep` extra, so that the domain packages install
# without them.
SWEEP_EXTRA_MODULES = ("optuna", "matplotlib")

_EXAMPLES = """\
examples:
  litlab sweep experiments/vision/mnist_mlp.sweep.yaml --count 20
  litlab sweep experiments/vision/mnist_mlp.sweep.yaml --count 20 --workers 2
  litlab sweep experiments/vision/mnist_mlp.sweep.yaml --count 50 \\
      --storage postgresql://user:password@dbhost/sweeps      # on each machine
  litlab sweep experiments/vision/mnist_mlp.sweep.yaml --summary
  litlab sweep experiments/vision/mnist_mlp.sweep.yaml --backend wandb --count 20

Running the same command again resumes a sweep: finished trials are kept, and only the
missing ones run.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litlab sweep",
        description="Run a hyperparameter sweep: a W&B sweep file whose parameters are "
        "litlab's dotted config keys (model.lr) and whose program: is an experiment config.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("file", help="The sweep file (experiments/<domain>/<task>.sweep.yaml).")
    parser.add_argument(
        "--backend",
        choices=("wandb", "optuna"),
        help="wandb: create the sweep on the W&B server and run an agent here; optuna: run it "
        "locally, the study in a database. Default: wandb with a W&B login (and WANDB_MODE "
        "not offline/disabled), else optuna.",
    )
    parser.add_argument(
        "--count",
        type=_positive_int,
        help="Finished trials wanted in the study (optuna: in total, so a rerun resumes up to "
        "it; default the file's run_cap, or the grid's size) or run by this agent (wandb).",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="optuna: trial processes at once on this machine, sharing the study (they share "
        "its devices too). Default 1.",
    )
    parser.add_argument(
        "--storage",
        help="optuna: the study's database URL, e.g. postgresql://user:password@host/db to "
        "share a study between machines. Default: sqlite:///<runs_root>/sweeps/<name>/study.db.",
    )
    parser.add_argument(
        "--runs_root",
        default="runs",
        help="Folder of the run folders; the sweep's are under <runs_root>/sweeps/<name>/.",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="optuna: only print the trial table and write trials.csv, best.yaml and the plots.",
    )
    parser.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="Skip the one-batch run that checks the metric is logged (keys are still checked).",
    )
    parser.add_argument("--seed", type=int, help="optuna: seed of the sampler.")
    return parser


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    # Imported after parsing, so --help answers at once.
    from litlab.app.sweeps.spec import load_sweep
    from litlab.app.sweeps.wandb_backend import wandb_available

    spec = load_sweep(args.file)
    sweep_dir = Path(args.runs_root) / "sweeps" / spec.name
    backend = args.backend or ("wandb" if wandb_available() else "optuna")
    if backend == "wandb":
        _run_on_wandb(args, spec, sweep_dir)
    else:
        _run_with_optuna(args, argv, spec, sweep_dir)


def _run_on_wandb(args: argparse.Namespace, spec: SweepSpec, sweep_dir: Path) -> None:
    from litlab.app.sweeps.validation import check_config_keys, check_metric_logged
    from litlab.app.sweeps.wandb_backend import run_wandb_sweep

    if args.summary or args.storage or args.workers != 1:
        raise LitlabError(
            "--summary, --storage and --workers are for --backend optuna. A W&B sweep's "
            "trials, best run and importances are on its W&B page; start more agents with "
            "`wandb agent`"
        )
    check_config_keys(spec, spec.center_values())
    if args.preflight:
        check_metric_logged(spec, spec.center_values(), sweep_dir)
    run_wandb_sweep(spec, args.count, str(sweep_dir / "trials"))


def _run_with_optuna(
    args: argparse.Namespace, argv: list[str], spec: SweepSpec, sweep_dir: Path
) -> None:
    _require_sweep_extra()
    from optuna.trial import TrialState

    from litlab.app.sweeps.optuna_backend import (
        StudyLoop,
        TrialRunner,
        default_storage,
        open_study,
        progress,
    )
    from litlab.app.sweeps.optuna_space import OptunaSpace
    from litlab.app.sweeps.summary import summarize
    from litlab.app.sweeps.validation import check_config_keys, check_metric_logged

    space = OptunaSpace(spec)
    storage = args.storage or default_storage(sweep_dir)
    study = open_study(spec, space, storage, seed=args.seed, create=not args.summary)
    if args.summary:
        summarize(spec, study, sweep_dir)
        return
    count = _count(args.count, spec, space)
    now = progress(study)
    if now.finished >= count:
        log.info(
            "The study %s already has %d finished trials (--count %d): nothing to run. Give a "
            "higher --count to run more.", spec.name, now.finished, count,
        )  # fmt: skip
        summarize(spec, study, sweep_dir)
        return
    if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        log.info("Resuming the study %s: %d of %d trials finished.", spec.name, now.finished, count)
    else:
        check_config_keys(spec, spec.center_values())
        if args.preflight:
            check_metric_logged(spec, spec.center_values(), sweep_dir)
    log.info(
        "Sweep %s (%s, %s %s): %d trials, %d at a time. Study: %s",
        spec.name, spec.method, spec.goal, spec.metric, count, args.workers, storage,
    )  # fmt: skip
    runner = TrialRunner(spec, space, storage, sweep_dir / "trials")
    try:
        interrupted = StudyLoop(study, space, count, args.workers, runner).run()
    finally:
        summarize(spec, study, sweep_dir)
    if interrupted:
        log.info(
            "Interrupted: finished trials stay in the study. Resume with:\n  %s",
            as_launched("litlab", "sweep", *argv),
        )
        sys.exit(130)


def _require_sweep_extra() -> None:
    """Checked before any trial runs: matplotlib is otherwise first imported for the plots,
    after the last trial."""
    if any(importlib.util.find_spec(name) is None for name in SWEEP_EXTRA_MODULES):
        raise LitlabError(
            "litlab sweep needs optuna and matplotlib for the Optuna backend: install them with "
            "pip install 'litlab-core[sweep]' (uv sync installs them)"
        )


def _count(given: int | None, spec: SweepSpec, space: OptunaSpace) -> int:
    caps = [given, spec.run_cap]
    if spec.method == "grid":
        caps.append(space.grid_size())
    known = [cap for cap in caps if cap is not None]
    if not known:
        raise LitlabError(
            f"how many trials? Give --count N (or run_cap: in {spec.path}); method "
            f"{spec.method} has no end by itself"
        )
    return min(known)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
