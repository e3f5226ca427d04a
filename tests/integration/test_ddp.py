"""Real DDP on this machine: two CPU processes with the gloo backend, started as a user starts
them, against one process with the same global batch.

- MNIST MLP: ``litlab fit --trainer.devices 2``, Lightning launching rank 1;
- char GPT: ``torchrun --nproc-per-node 2 litlab fit --trainer.devices 2``, every rank started by
  torchrun, so the ranks must find their one run folder by themselves.

Each run carries ``ddp_probe.DDPProbe``, which saves what every rank saw and ended with. The
one-process reference runs in this process (no start-up cost), with batch 2B where a rank has B.

Why the weights are compared with a tolerance and not bit for bit: DDP averages the two ranks'
gradients of their B samples each (the mean over the 2B samples, as the reference's loss), but
gloo adds the two halves in another order than one backward pass over 2B does, so float32
rounding differs by ~1e-7 per step (measured: 5e-8 for the MLP, 3e-7 for the GPT after 8 and 6
AdamW steps). TOLERANCE is 1e-5, while training moves the weights by more than 1e-3: an update
from another batch, or from the mean of the ranks' losses over the wrong count, is far outside.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_probe import probe_args, read_probe
from launching import BIN, fit_in_process, launch, max_difference

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"
CHAR_GPT = REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt.yaml"
TOLERANCE = 1e-5
MIN_TRAINING_CHANGE = 1e-3
BATCH = 16  # per rank; the reference takes 2 * BATCH
MNIST_VAL_SIZE = 5000  # even: DistributedSampler pads nothing, each rank scores 2500
MNIST_STEPS = 8
GPT_STEPS = 6

QUIET = [
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.num_sanity_val_steps", "0",
]  # fmt: skip
TINY_MNIST = [
    "--model.network.init_args.hidden_features", "[64]",
    "--model.network.init_args.dropout", "0",  # both sides must compute the same function
    "--model.lr_scheduler.init_args.warmup_steps", "2",  # the LR is not ~0 for all 8 steps
    "--data.init_args.val_size", str(MNIST_VAL_SIZE),
    "--data.init_args.num_workers", "0",
    "--trainer.max_epochs", "1",
    "--trainer.limit_train_batches", str(MNIST_STEPS),
    "--trainer.logger", "false",
    "--trainer.enable_checkpointing", "false",
    *QUIET,
]  # fmt: skip
TINY_GPT = [
    "--model.network.init_args.num_layers", "1",
    "--model.network.init_args.embed_dim", "32",
    "--model.network.init_args.num_heads", "2",
    "--model.network.init_args.block_size", "32",
    "--model.lr_scheduler.init_args.warmup_steps", "2",
    "--data.init_args.block_size", "32",  # 3486 validation blocks: no padding between 2 ranks
    "--data.init_args.samples_per_epoch", str(2 * BATCH * GPT_STEPS),
    "--trainer.max_steps", str(GPT_STEPS),
    *QUIET,
]  # fmt: skip
ON_TWO_CPU_PROCESSES = [
    "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"
]  # fmt: skip


def fit_with_probe(config: Path, args: list[str], probe: Path, runs: Path) -> dict:
    fit_in_process(config, [*args, *probe_args(probe)], runs)
    return read_probe(probe)


def assert_ranks_train_as_one_process(ranks: list[dict], single: dict, steps: int) -> None:
    # Rank r takes positions r, r + 2, ... of the epoch's order: the reference's order.
    for rank, record in enumerate(ranks):
        assert record["world_size"] == 2
        assert record["train_order"] == single["train_order"][rank::2]
    # So each step's global batch is the reference's batch, sample for sample.
    assert single["global_step"] == steps
    assert [r["global_step"] for r in ranks] == [steps, steps]
    for step, reference in enumerate(single["train_inputs"]):
        for rank, record in enumerate(ranks):
            assert torch.equal(record["train_inputs"][step], reference[rank::2])
    # Same start, identical weights on both ranks, equal to the reference's.
    assert max_difference(ranks[0]["initial_state"], single["initial_state"]) == 0
    for name, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][name]), name
    assert max_difference(ranks[0]["state"], single["state"]) < TOLERANCE
    assert max_difference(single["state"], single["initial_state"]) > MIN_TRAINING_CHANGE


@pytest.fixture(scope="module")
def mnist(data_root, tmp_path_factory):
    """The MNIST MLP on 2 processes (Lightning's launcher) and on 1 with the global batch."""
    folder = tmp_path_factory.mktemp("mnist_ddp")
    launch(
        [
            str(BIN / "litlab"), "fit", "-c", str(MNIST_MLP), "--runs_root", "runs",
            *TINY_MNIST, "--data.init_args.batch_size", str(BATCH), *ON_TWO_CPU_PROCESSES,
            *probe_args(folder / "ddp"),
        ],
        cwd=folder,
    )  # fmt: skip
    single = fit_with_probe(
        MNIST_MLP,
        [*TINY_MNIST, "--data.init_args.batch_size", str(2 * BATCH)],
        folder / "single",
        folder / "runs",
    )
    return [read_probe(folder / "ddp", rank) for rank in (0, 1)], single


@pytest.fixture(scope="module")
def gpt(data_root, tmp_path_factory):
    """The char GPT on 2 processes started by torchrun, with the default logger and checkpoints,
    and on 1 with the global batch."""
    folder = tmp_path_factory.mktemp("gpt_ddp")
    launched = launch(
        [
            str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2",
            str(BIN / "litlab"), "fit", "-c", str(CHAR_GPT), "--runs_root", "runs",
            *TINY_GPT, "--data.init_args.batch_size", str(BATCH), *ON_TWO_CPU_PROCESSES,
            *probe_args(folder / "ddp"),
        ],
        cwd=folder,
    )  # fmt: skip
    single = fit_with_probe(
        CHAR_GPT,
        [
            *TINY_GPT, "--data.init_args.batch_size", str(2 * BATCH),
            "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
        ],
        folder / "single",
        folder / "single_runs",
    )  # fmt: skip
    ranks = [read_probe(folder / "ddp", rank) for rank in (0, 1)]
    return ranks, single, folder / "runs" / "shakespeare_char_gpt", launched


@pytest.mark.slow
def test_mnist_ranks_hold_the_weights_of_one_process_with_the_global_batch(mnist):
    ranks, single = mnist
    assert_ranks_train_as_one_process(ranks, single, MNIST_STEPS)


@pytest.mark.slow
def test_mnist_validation_metrics_are_synchronised_over_the_whole_validation_set(mnist):
    ranks, single = mnist
    # torchmetrics accuracy and the sync_dist mean of the loss: one value on every rank, that
    # of the whole validation set (scored in one process). Half the set on each rank would
    # be off by several samples in 2500.
    for name in ("val/acc", "val/loss"):
        assert ranks[0]["metrics"][name] == ranks[1]["metrics"][name], name
    assert ranks[0]["metrics"]["val/acc"] == pytest.approx(
        single["metrics"]["val/acc"], abs=1 / MNIST_VAL_SIZE
    )
    assert ranks[0]["metrics"]["val/loss"] == pytest.approx(single["metrics"]["val/loss"], rel=1e-5)
    # The training loss is logged per rank, unsynchronised: the two halves' mean is the whole's.
    halves = [record["metrics"]["train/loss_epoch"] for record in ranks]
    assert halves[0] != halves[1]
    assert sum(halves) / 2 == pytest.approx(single["metrics"]["train/loss_epoch"], rel=1e-5)


@pytest.mark.slow
def test_mnist_distributed_sampler_splits_the_data_without_overlap(mnist):
    ranks, single = mnist
    num_train = len(single["train_order"])
    for split, size in (("train_order", num_train), ("val_order", MNIST_VAL_SIZE)):
        shards = [set(record[split]) for record in ranks]
        assert [len(record[split]) for record in ranks] == [size // 2, size // 2]
        assert not shards[0] & shards[1]
        assert shards[0] | shards[1] == set(range(size))


@pytest.mark.slow
def test_gpt_under_torchrun_trains_as_one_process_and_keeps_one_run_folder(gpt):
    ranks, single, experiment_dir, launched = gpt
    assert {record["cluster_environment"] for record in ranks} == {"TorchElasticEnvironment"}
    assert_ranks_train_as_one_process(ranks, single, GPT_STEPS)

    # val/loss is summed over the ranks' tokens by torchmetrics: the mean over every
    # validation character, though the ranks scored different numbers of them (the last block
    # is short). A mean of the ranks' means is 9e-6 off here.
    for name in ("val/loss", "val/bpc"):
        assert ranks[0]["metrics"][name] == ranks[1]["metrics"][name], name
        assert ranks[0]["metrics"][name] == pytest.approx(single["metrics"][name], rel=2e-6)

    # torchrun starts every rank by itself: they name the same run (and W&B id) with no help
    # from a parent process, and only one folder is written.
    (run_dir,) = experiment_dir.iterdir()
    run_id = run_dir.name.rsplit("-", 1)[-1]
    assert {Path(record["run_dir"]).name.rsplit("-", 1)[-1] for record in ranks} == {run_id}
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert wandb_run.name.endswith(run_id)
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in launched.stderr
