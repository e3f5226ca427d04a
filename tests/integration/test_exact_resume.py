"""A run stopped by SIGTERM or SIGINT in the middle of an epoch and resumed with
`litlab fit ... --ckpt_path last` ends with the weights, optimizer state and logged metrics of
a run that never stopped, bit for bit; its W&B run goes on under the same id. Also: the same
seed and config give bit-identical runs."""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from wandb_records import read_records

from litlab.app.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
LITLAB = Path(sys.executable).parent / "litlab"
HELPERS = REPO_ROOT / "tests" / "helpers"
MNIST_MLP = str(REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml")
CHAR_GPT = str(REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt.yaml")
QUIET = [
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.log_every_n_steps", "1",
]  # fmt: skip
# 6 batches an epoch, 2 epochs; dropout 0.2 and a warm-up/cosine LR schedule per step.
TINY_MLP = [
    "--model.network.init_args.hidden_features", "[32]",
    "--model.lr_scheduler.init_args.warmup_steps", "4",
    "--data.init_args.num_workers", "0",
    "--trainer.max_epochs", "2",
    "--trainer.limit_train_batches", "6",
    "--trainer.limit_val_batches", "2",
    *QUIET,
]  # fmt: skip
# One layer with dropout; 10 batches an epoch, gradients accumulated over 2; 12 steps.
TINY_GPT = [
    "--model.network.init_args.num_layers", "1",
    "--model.network.init_args.num_heads", "2",
    "--model.network.init_args.embed_dim", "32",
    "--model.network.init_args.block_size", "16",
    "--model.network.init_args.dropout", "0.1",
    "--model.lr_scheduler.init_args.warmup_steps", "3",
    "--data.init_args.block_size", "16",
    "--data.init_args.batch_size", "4",
    "--data.init_args.samples_per_epoch", "40",
    "--data.init_args.eval_batch_size", "8",
    "--trainer.max_steps", "12",
    "--trainer.accumulate_grad_batches", "2",
    "--trainer.limit_val_batches", "2",
    *QUIET,
]  # fmt: skip


def signal_at(step: int, signum: int) -> list[str]:
    return [
        "--trainer.callbacks+=signal_at_step.SignalAtStep",
        f"--trainer.callbacks.step={step}",
        f"--trainer.callbacks.signum={signum}",
    ]


def fit(*args: str) -> None:
    # LightningCLI warns when pytest's own arguments are in sys.argv.
    with mock.patch.object(sys, "argv", ["litlab"]):
        main(["fit", *args])


def run_dir(runs_root: Path) -> Path:
    (experiment,) = runs_root.iterdir()
    (run,) = experiment.iterdir()
    return run


def final_state(runs_root: Path) -> dict:
    return torch.load(run_dir(runs_root) / "checkpoints" / "last.ckpt", weights_only=False)


def history(runs_root: Path) -> list[tuple[str, list[dict]]]:
    """(W&B run id, metrics rows) of each offline W&B run in the run folder, oldest first;
    W&B's own counters and the wall times left out."""
    parts = []
    for offline_run in sorted((run_dir(runs_root) / "wandb").glob("offline-run-*")):
        (log_file,) = offline_run.glob("run-*.wandb")
        rows = []
        for record in complete_records(log_file):
            if record.WhichOneof("record_type") == "history":
                items = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                rows.append({k: v for k, v in items.items() if not k.startswith(("_", "res"))})
        parts.append((log_file.stem.removeprefix("run-"), rows))
    return parts


def run_names(runs_root: Path) -> list[str]:
    """The W&B display name of each offline part of the run folder's W&B run, oldest first."""
    names = []
    for offline_run in sorted((run_dir(runs_root) / "wandb").glob("offline-run-*")):
        (log_file,) = offline_run.glob("run-*.wandb")
        runs = [r.run for r in complete_records(log_file) if r.WhichOneof("record_type") == "run"]
        names.append(runs[0].display_name)
    return names


def complete_records(log_file: Path, timeout_s: float = 30.0) -> list:
    """The records of a finished run's log. W&B's service process writes it: after an
    in-process run's `finish()` the last records can still be on their way."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = list(read_records(log_file))
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{log_file} has no exit record"
        time.sleep(0.2)


def all_rows(parts: list[tuple[str, list[dict]]]) -> list[dict]:
    return [row for _, rows in parts for row in rows]


def assert_same_training(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    for key in ("state_dict", "current_model_state"):
        assert (key in a) == (key in b)
        for name, tensor in a.get(key, {}).items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"
    for state_a, state_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for index, values in state_a["state"].items():
            for name, value in values.items():
                assert torch.equal(value, state_b["state"][index][name]), name
    assert a["lr_schedulers"] == b["lr_schedulers"]


@pytest.fixture
def offline_env(tmp_path):
    """The environment of a machine without a W&B login, tests/helpers importable."""
    # Launched as a plain `litlab`, not through the `uv run` that may have started pytest.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WANDB_") and k != "UV_RUN_RECURSION_DEPTH"
    }
    env.update(
        HOME=str(tmp_path), NETRC=str(tmp_path / "no-netrc"), WANDB_SILENT="true",
        PYTHONPATH=os.pathsep.join([str(HELPERS), env.get("PYTHONPATH", "")]),
    )  # fmt: skip
    return env


@pytest.mark.slow
def test_sigterm_in_a_subprocess_then_resume_last(data_root, in_tmp_dir, offline_env):
    fit("-c", MNIST_MLP, *TINY_MLP, "--runs_root", "uninterrupted")

    stopped = subprocess.run(
        [str(LITLAB), "fit", "-c", MNIST_MLP, *TINY_MLP, *signal_at(7, 15)],
        env=offline_env, cwd=in_tmp_dir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # Exits as killed by SIGTERM would, with where the state is and how to go on.
    assert stopped.returncode == 128 + 15, stopped.stderr[-3000:]
    assert "Stopped by SIGTERM at step 8 (epoch 1)" in stopped.stderr  # after step 8's batch
    assert "Traceback" not in stopped.stderr
    resume_line = stopped.stderr.split("Resume this run")[1].splitlines()[1].strip()
    assert resume_line.startswith(f"litlab fit -c {MNIST_MLP}")
    assert resume_line.endswith("--ckpt_path last")
    assert final_state(in_tmp_dir / "runs")["global_step"] == 8

    # The printed command, as the user would paste it (the signal is sent after step 7 only).
    fit(*shlex.split(resume_line)[2:])

    # The same folder and the same W&B run, its steps going on from where they stopped; the
    # first part stays on disk, for `wandb sync` of both.
    run = run_dir(in_tmp_dir / "runs")
    (first_id, first_part), (resumed_id, resumed_part) = history(in_tmp_dir / "runs")
    assert first_id == resumed_id == run.name.rsplit("-", 1)[-1]
    # ... under the name its first command gave it (its overrides), not the resume command's.
    first_name, resumed_name = run_names(in_tmp_dir / "runs")
    assert first_name == resumed_name
    assert "trainer.max_epochs=2" in first_name, first_name
    last_step = max(row["trainer/global_step"] for row in first_part)
    assert resumed_part[0]["trainer/global_step"] == 8 > last_step

    assert_same_training(
        final_state(in_tmp_dir / "uninterrupted"), final_state(in_tmp_dir / "runs")
    )
    ((_, uninterrupted),) = history(in_tmp_dir / "uninterrupted")
    assert first_part + resumed_part == uninterrupted
    # Its config.yaml replayed later starts a new run, not a resume of this one.
    assert yaml.safe_load((run / "config.yaml").read_text())["ckpt_path"] is None


@pytest.fixture(scope="module")
def uninterrupted_gpt(tmp_path_factory) -> Path:
    runs_root = tmp_path_factory.mktemp("gpt") / "runs"
    fit("-c", CHAR_GPT, *TINY_GPT, "--runs_root", str(runs_root))
    return runs_root


@pytest.mark.slow
def test_char_gpt_stopped_inside_an_accumulation_cycle_and_requeued_resumes_exactly(
    data_root, in_tmp_dir, uninterrupted_gpt, monkeypatch
):
    # A SLURM job step: started again after a requeue, it keeps its job id, so the same
    # command finds its run folder and goes on from there, no --ckpt_path needed.
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    # 10 batches an epoch, 2 a step. The signal comes as the first batch of step 8 starts:
    # the run stops when step 8 is done, in the middle of epoch 1.
    with pytest.raises(SystemExit) as exit_info:
        fit("-c", CHAR_GPT, *TINY_GPT, *signal_at(7, 15))
    assert exit_info.value.code == 128 + 15
    assert final_state(in_tmp_dir / "runs")["global_step"] == 8

    fit("-c", CHAR_GPT, *TINY_GPT, *signal_at(7, 15))

    assert_same_training(final_state(uninterrupted_gpt), final_state(in_tmp_dir / "runs"))
    assert all_rows(history(in_tmp_dir / "runs")) == all_rows(history(uninterrupted_gpt))


@pytest.mark.slow
def test_same_seed_and_config_give_bit_identical_runs(data_root, in_tmp_dir, uninterrupted_gpt):
    fit("-c", CHAR_GPT, *TINY_GPT)
    assert_same_training(final_state(uninterrupted_gpt), final_state(in_tmp_dir / "runs"))
    rows = all_rows(history(in_tmp_dir / "runs"))
    assert any("val/loss" in row for row in rows)
    assert rows == all_rows(history(uninterrupted_gpt))


@pytest.mark.slow
def test_in_memory_loader_with_augmentation_mixup_and_ema_after_ctrl_c(data_root, in_tmp_dir):
    options = [
        "-c", MNIST_MLP, *TINY_MLP,
        "--data.init_args.in_memory", "true",
        "--data.init_args.random_crop_padding", "2",
        "--data.init_args.horizontal_flip", "true",
        "--data.init_args.mixup_alpha", "0.2",
        "--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging",
        "--trainer.callbacks.decay", "0.9",
    ]  # fmt: skip
    fit(*options, "--runs_root", "uninterrupted")
    with pytest.raises(SystemExit) as exit_info:
        fit(*options, *signal_at(9, 2))
    assert exit_info.value.code == 128 + 2
    fit(*options, "--ckpt_path", "last")

    uninterrupted, resumed = (
        final_state(in_tmp_dir / "uninterrupted"),
        final_state(in_tmp_dir / "runs"),
    )
    assert "current_model_state" in resumed  # the EMA weights are in state_dict
    assert_same_training(uninterrupted, resumed)
    assert all_rows(history(in_tmp_dir / "runs")) == all_rows(history(in_tmp_dir / "uninterrupted"))
