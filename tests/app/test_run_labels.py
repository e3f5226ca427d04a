"""W&B run names say the experiment and the hyperparameters the command line changed; tags
come from the config, the model's domain and the subcommand."""

import sys
from pathlib import Path

import pytest
import wandb
import yaml
from wandb_records import read_records

from litlab.app.cli import main
from litlab.app.run_labels import command_line_overrides, run_name, run_tags
from litlab.core.errors import LitlabError

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"


def test_overrides_in_both_spellings_last_one_wins():
    argv = ["fit", "-c", "x.yaml", "--model.lr", "0.1", "--data.batch_size=64", "--model.lr=0.01"]
    # -c is a short option: its value is a file, not an override.
    assert command_line_overrides(argv) == {"data.batch_size": "64", "model.lr": "0.01"}


def test_negative_numbers_are_values_not_options():
    assert command_line_overrides(["--trainer.max_steps", "-1", "--seed_everything", "7"]) == {
        "trainer.max_steps": "-1",
        "seed_everything": "7",
    }


def test_name_shows_the_hyperparameters_typed():
    argv = [
        "fit",
        "-c",
        "experiments/vision/mnist_mlp.yaml",
        "--model.lr",
        "0.01",
        "--data.init_args.batch_size=64",
        "--model.network.init_args.hidden_features",
        "[256, 256]",
        "--model.optimizer",
        "torch.optim.SGD",
        "--trainer.max_epochs",
        "3",
    ]
    assert run_name("mnist_mlp", argv) == (
        "mnist_mlp model.lr=0.01 data.batch_size=64 model.network.hidden_features=[256,256] "
        "model.optimizer=SGD trainer.max_epochs=3"
    )


def test_name_leaves_out_what_does_not_change_the_result():
    argv = [
        "fit",
        "--config",
        "a.yaml",
        "--ckpt_path",
        "last",
        "--runs_root=/tmp/runs",
        "--experiment",
        "other",
        "--tags",
        "[x]",
        "--trainer.devices",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.group=sweep-1",
        "--trainer.limit_val_batches",
        "5",
        "--data.init_args.num_workers",
        "8",
        "--data.data_dir",
        "/data",
    ]
    assert run_name("mnist_mlp", argv) == "mnist_mlp"


def test_long_names_are_cut():
    name = run_name("exp", [f"--model.option_{i}={'v' * 40}" for i in range(10)])
    assert len(name) == 128
    assert name.endswith("…")
    assert "model.option_0=" + "v" * 31 + "…" in name  # each value at most 32 characters


def test_tags_add_domain_and_subcommand_without_repeats():
    tags = run_tags(
        ["lr-study", "fit"], "litlab.vision.tasks.classification.ImageClassifier", "fit"
    )
    assert tags == ["lr-study", "fit", "vision"]
    assert run_tags([], "my_project.MyTask", "test") == ["test"]


def test_a_tag_w_and_b_would_refuse_is_a_user_error():
    with pytest.raises(LitlabError, match="W&B tags have 1 to 64"):
        run_tags(["x" * 65], None, "fit")


def test_the_cli_names_and_tags_the_w_and_b_run(data_root, in_tmp_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    config = yaml.safe_load(MNIST_MLP.read_text())
    config["tags"] = ["from-yaml"]
    experiment = in_tmp_dir / "tiny_mlp.yaml"
    experiment.write_text(yaml.safe_dump(config))
    main(
        [
            "fit",
            "-c",
            str(experiment),
            "--model.lr=0.01",
            "--tags+",
            "typed",
            "--model.network.init_args.hidden_features",
            "[16]",
            "--data.init_args.num_workers",
            "0",
            "--trainer.max_steps",
            "1",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    (log_file,) = in_tmp_dir.glob("runs/tiny_mlp/*/wandb/offline-run-*/run-*.wandb")
    wandb.teardown()  # the W&B service writes a finished run's log out by the time it stops
    (run,) = [r.run for r in read_records(log_file) if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "tiny_mlp model.lr=0.01 model.network.hidden_features=[16] " + (
        "trainer.max_steps=1"
    )
    assert list(run.tags) == ["from-yaml", "typed", "vision", "fit"]
    # The run folder keeps its name: experiment, then time and id.
    assert log_file.parents[2].parent.name == "tiny_mlp"
