"""run_dir_for_command: under torchrun or srun, where every rank starts the command by itself,
all ranks name the same run with no communication; a requeued job finds its folder again."""

import pytest

from litlab.app.runs import run_dir_for_command

LAUNCHER_VARIABLES = (
    "TORCHELASTIC_RUN_ID",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_CLUSTER_NAME",
    "WANDB_SWEEP_ID",
)


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run_id(run_dir) -> str:
    return run_dir.name.rsplit("-", 1)[-1]


def test_alone_every_command_gets_a_new_random_id(tmp_path):
    ids = {run_id(run_dir_for_command(tmp_path, "exp")) for _ in range(5)}
    assert len(ids) == 5


def test_torchrun_ranks_share_the_id_of_their_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "3f2b9c")
    rank0, rank1 = run_dir_for_command(tmp_path, "exp"), run_dir_for_command(tmp_path, "exp")
    assert run_id(rank0) == run_id(rank1)
    assert len(run_id(rank0)) == 8
    assert run_id(rank0).isalnum()
    assert run_id(rank0).islower()
    # Another launch, experiment or runs folder is another run.
    assert run_id(run_dir_for_command(tmp_path, "other")) != run_id(rank0)
    assert run_id(run_dir_for_command(tmp_path / "elsewhere", "exp")) != run_id(rank0)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "81d0aa")
    assert run_id(run_dir_for_command(tmp_path, "exp")) != run_id(rank0)


def test_torchruns_default_rdzv_id_names_no_launch(tmp_path, monkeypatch):
    # `none` would give every torchrun launch without --rdzv-id one and the same run.
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    assert run_id(run_dir_for_command(tmp_path, "exp")) != run_id(
        run_dir_for_command(tmp_path, "exp")
    )


def test_slurm_tasks_share_their_job_step(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "421337")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    fit = run_id(run_dir_for_command(tmp_path, "exp"))
    assert run_id(run_dir_for_command(tmp_path, "exp")) == fit
    # The next srun of the job script (e.g. `litlab test` after `litlab fit`) is a new run.
    monkeypatch.setenv("SLURM_STEP_ID", "1")
    assert run_id(run_dir_for_command(tmp_path, "exp")) != fit


def test_slurm_batch_script_without_srun_names_no_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "421337")
    assert run_id(run_dir_for_command(tmp_path, "exp")) != run_id(
        run_dir_for_command(tmp_path, "exp")
    )


def test_a_requeued_job_finds_its_run_folder_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "421337")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    first = run_dir_for_command(tmp_path, "exp")
    # Written by the first start, under that start's time; the requeued start is later.
    earlier = first.with_name(f"20200101-000000-{run_id(first)}")
    earlier.mkdir(parents=True)
    assert run_dir_for_command(tmp_path, "exp") == earlier


def test_a_wandb_sweep_agent_keeps_its_own_id(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "3f2b9c")
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun")
    assert run_id(run_dir_for_command(tmp_path, "exp")) == "agentrun"
