"""The test-time W&B report of a classifier (confusion matrix, worst-classified images) under
real DDP: ``litlab test`` on two CPU processes (gloo) against one process, on the same test
samples, each read back from its offline W&B run as W&B would show it.

Rank r of 2 takes test samples r, r + 2, ... (Lightning's DistributedSampler, unshuffled), so
LIMIT batches of BATCH on each rank cover the first 2 * BATCH * LIMIT samples, the same ones as
LIMIT batches of 2 * BATCH in one process; the count divides evenly, so no sample is repeated
to pad the ranks. A report of rank 0's share alone (as before torchmetrics' synchronised
confusion matrix and the gathered worst images) counts half of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from launching import BIN, fit_in_process, launch, litlab_in_process
from wandb_records import read_records

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"
BATCH = 100  # per rank; one process takes 2 * BATCH
LIMIT = 5
SAMPLES = 2 * BATCH * LIMIT

TINY = [
    "--model.network.init_args.hidden_features", "[64]",
    "--data.init_args.num_workers", "0",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def read_report(runs: Path) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """The confusion matrix (rows: true class) and the worst images, as (image content hash,
    caption), that the one W&B run under ``runs`` received."""
    (run,) = runs.glob("mnist_mlp/*/wandb/offline-run-*")
    (table,) = run.glob("files/media/table/test/confusion_matrix_table_*.table.json")
    matrix = torch.zeros(10, 10, dtype=torch.long)
    for actual, predicted, count in json.loads(table.read_text())["data"]:
        matrix[int(actual), int(predicted)] = int(count)
    logged = {}
    for record in read_records(next(run.glob("run-*.wandb"))):
        for item in record.history.item:
            if list(item.nested_key[:1]) == ["test/worst_classified"]:
                logged[item.nested_key[1]] = json.loads(item.value_json)
    # W&B names each image file after its content: .../worst_classified_<step>_<hash>.png
    hashes = [Path(name).stem.rsplit("_", 1)[-1] for name in logged["filenames"]]
    return matrix, sorted(zip(hashes, logged["captions"], strict=True))


@pytest.fixture(scope="module")
def reports(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report_ddp")
    # A briefly trained model: errors spread over many cells of the matrix.
    fit_in_process(
        MNIST_MLP,
        [
            *TINY, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "30",
            "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
            "--trainer.logger", "false",
        ],
        folder / "fit",
    )  # fmt: skip
    (checkpoint,) = (folder / "fit").glob("mnist_mlp/*/checkpoints/best.ckpt")
    test = [*TINY, "--ckpt_path", str(checkpoint), "--trainer.limit_test_batches", str(LIMIT)]
    launch(
        [
            str(BIN / "litlab"), "test", "-c", str(MNIST_MLP), "--runs_root", "ddp",
            *test, "--data.init_args.batch_size", str(BATCH),
            "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        ],
        cwd=folder,
    )  # fmt: skip
    litlab_in_process(
        "test", MNIST_MLP, [*test, "--data.init_args.batch_size", str(2 * BATCH)], folder / "single"
    )
    return read_report(folder / "ddp"), read_report(folder / "single")


@pytest.mark.slow
def test_two_processes_report_the_confusion_matrix_of_the_whole_test_set(reports):
    (ddp_matrix, _), (single_matrix, _) = reports
    assert single_matrix.sum() == SAMPLES
    assert 0 < single_matrix.trace() < SAMPLES  # right and wrong answers, so cells differ
    assert ddp_matrix.sum() == SAMPLES
    assert torch.equal(ddp_matrix, single_matrix)


@pytest.mark.slow
def test_two_processes_show_the_worst_images_of_the_whole_test_set(reports):
    (_, ddp_worst), (_, single_worst) = reports
    assert len(single_worst) == 16
    assert ddp_worst == single_worst
