"""The edges of a `litlab` command: a checkpoint made for another model stops it, a checkpoint
alone brings its run's config and is read once, a command that fails before its first step
leaves nothing behind, errors raised in loader workers are one line, and the run folder is
named at the start and the end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from fake_datasets import write_fake_mnist_like
from PIL import Image

from litlab.app.cli import LitlabCLI, main
from litlab.app.cli_errors import find_litlab_error
from litlab.core.errors import LitlabError

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO_ROOT / "experiments" / "vision"


pytestmark = pytest.mark.usefixtures("cli_process")


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    write_fake_mnist_like(tmp_path / "data", "MNIST")
    return tmp_path / "data"


def quick(data: Path, *, logger: bool = False) -> list[str]:
    """Options that make any mnist preset a few-step run on the fake MNIST."""
    return [
        "--data.init_args.data_dir", str(data),
        "--data.init_args.val_size", "100",
        "--data.init_args.num_workers", "0",
        "--data.init_args.download", "false",
        "--trainer.max_steps", "2",
        "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        *([] if logger else ["--trainer.logger", "false"]),
    ]  # fmt: skip


def tiny_mlp(data: Path, *, logger: bool = False) -> list[str]:
    return ["-c", str(EXPERIMENTS / "mnist_mlp.yaml"), *quick(data, logger=logger),
            "--model.network.init_args.hidden_features", "[16]"]  # fmt: skip


def fitted_mlp(data: Path) -> Path:
    """The last.ckpt of a 2-step mnist_mlp run under ./runs."""
    LitlabCLI(args=["fit", *tiny_mlp(data)])
    (last,) = Path("runs/mnist_mlp").glob("*/checkpoints/last.ckpt")
    return last


def one_line_error(*args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    message = str(exit_info.value.code)
    assert message.startswith("litlab: error: "), message
    assert len(message.splitlines()) == 1, message
    return message


def run_folders(experiment: str) -> list[Path]:
    return sorted(Path("runs", experiment).glob("*"))


def test_a_checkpoint_of_another_model_stops_before_any_run_exists(fake_mnist):
    last = fitted_mlp(fake_mnist)
    cnn = ["-c", str(EXPERIMENTS / "mnist_cnn.yaml"), *quick(fake_mnist, logger=True)]
    message = one_line_error("test", *cnn, "--ckpt_path", str(last))
    assert "it was made by ImageClassifier(MLPClassifier), the config builds " in message
    assert "ImageClassifier(SmallCNN)" in message
    assert "the checkpoint is a run of mnist_mlp, the config is mnist_cnn's" in message
    assert "--ckpt_path alone" in message
    assert not Path("runs/mnist_cnn").exists()


def test_same_shapes_from_another_network_class_stop_too(fake_mnist, monkeypatch):
    last = fitted_mlp(fake_mnist)
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["litlab"]["network"] = "litlab.vision.models.cnn.SmallCNN"
    torch.save(checkpoint, last)
    message = one_line_error("validate", *tiny_mlp(fake_mnist), "--ckpt_path", str(last))
    assert "it was made by ImageClassifier(SmallCNN), the config builds " in message


def test_a_checkpoint_alone_brings_its_runs_config_and_overrides_apply(fake_mnist):
    last = fitted_mlp(fake_mnist)
    cli = LitlabCLI(args=["test", "--ckpt_path", str(last), "--model.lr", "0.5"])
    # The network of the run (16 hidden units, not the preset's), the override on top.
    assert cli.model.network.mlp[0].out_features == 16
    assert cli.model.hparams.lr == 0.5
    assert cli.run_dir.parent == Path("runs/mnist_mlp")  # filed under the run's experiment
    assert cli.trainer.ckpt_path == str(last)


def test_fit_with_a_checkpoint_alone_resumes_in_its_run_folder(fake_mnist):
    last = fitted_mlp(fake_mnist)
    cli = LitlabCLI(args=["fit", "--ckpt_path", str(last), "--trainer.max_steps", "3"])
    assert cli.trainer.global_step == 3
    assert run_folders("mnist_mlp") == [last.parent.parent]


def test_the_config_wins_over_the_checkpoints_hyperparameters(fake_mnist):
    last = fitted_mlp(fake_mnist)
    cli = LitlabCLI(args=["validate", *tiny_mlp(fake_mnist), "--model.lr", "0.25",
                          "--ckpt_path", str(last)])  # fmt: skip
    assert cli.model.hparams.lr == 0.25


def test_the_checkpoint_is_read_once_and_safely(fake_mnist, monkeypatch):
    last = fitted_mlp(fake_mnist)
    loads = []
    real_load = torch.load

    def counting_load(file, *args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    LitlabCLI(args=["fit", "--ckpt_path", str(last), "--trainer.max_steps", "3"])
    assert loads == [None]  # torch's default: weights only


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["test", "--ckpt_path", "best"], "--ckpt_path best needs to know the experiment"),
        (["test", "--ckpt_path", "loose.ckpt"], "loose.ckpt is not in a litlab run folder"),
    ],
)
def test_a_checkpoint_alone_that_names_no_run(argv, named):
    Path("loose.ckpt").write_bytes(b"")
    assert named in one_line_error(*argv)


def test_a_command_that_fails_before_its_first_step_leaves_nothing(fake_mnist, tmp_path):
    (tmp_path / "empty").mkdir()
    args = tiny_mlp(fake_mnist, logger=True)
    message = one_line_error("predict", *args, "--data.init_args.predict_dir", "empty")
    assert "no images in empty" in message
    assert run_folders("mnist_mlp") == []
    # Failing in the data's setup, after W&B started, leaves nothing either. (A network built
    # for other images no longer gets this far: the data links refuse it while parsing.)
    message = one_line_error("fit", *args, "--data.init_args.val_size", "100000")
    assert "val_size=100000 leaves no training images" in message
    assert run_folders("mnist_mlp") == []


def test_a_failed_resume_keeps_its_run_folder(fake_mnist):
    last = fitted_mlp(fake_mnist)
    message = one_line_error("fit", "--ckpt_path", str(last), "--trainer.max_steps", "4",
                             "--data.init_args.data_dir", "missing")  # fmt: skip
    assert "MNIST" in message
    assert last.is_file()
    assert run_folders("mnist_mlp") == [last.parent.parent]


def test_errors_in_loader_workers_are_their_own_one_line(fake_mnist, tmp_path):
    last = fitted_mlp(fake_mnist)
    (tmp_path / "photos").mkdir()
    Image.new("L", (28, 28)).save(tmp_path / "photos" / "good.png")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not an image")
    message = one_line_error("predict", "--ckpt_path", str(last),
                             "--data.init_args.predict_dir", "photos",
                             "--data.init_args.num_workers", "1")  # fmt: skip
    assert message == (
        "litlab: error: cannot read image photos/broken.png: cannot identify image file "
        "'photos/broken.png'"
    )


class _Failing(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        raise LitlabError(f"sample {index} is bad\nsecond line")


def test_a_worker_error_is_given_back_its_own_message():
    loader = torch.utils.data.DataLoader(_Failing(), num_workers=1)
    with pytest.raises(LitlabError) as raised:
        next(iter(loader))
    assert "DataLoader worker process 0" in str(raised.value)
    assert str(find_litlab_error(raised.value)) == "sample 0 is bad\nsecond line"


def test_every_command_names_its_run_folder_at_start_and_end(fake_mnist, caplog):
    with caplog.at_level(logging.INFO, logger="litlab"):
        main(["fit", *tiny_mlp(fake_mnist)])  # no logger
    (folder,) = run_folders("mnist_mlp")
    assert caplog.messages.count(f"fit run folder: {folder}") == 2
