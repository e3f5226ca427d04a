"""The litlab command's answers to bad input: one short line naming the problem and the fix."""

from pathlib import Path

import pytest
import yaml

from litlab.app.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = str(REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml")


pytestmark = pytest.mark.usefixtures("cli_process")


def run_cli_error(*args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    message = str(exit_info.value.code)
    assert message.startswith("litlab: error: ")
    assert "Traceback" not in message
    assert len(message.splitlines()) <= 2, message
    return message


def test_unknown_key_in_the_config_file(tmp_path):
    config = yaml.safe_load(Path(MNIST_MLP).read_text())
    config["model"]["init_args"]["label_smothing"] = 0.1
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(config))
    message = run_cli_error("fit", "-c", str(bad))
    assert "unknown config key 'model.label_smothing'" in message
    assert "ImageClassifier has no such argument" in message


def test_unknown_trainer_key_on_the_command_line():
    message = run_cli_error("fit", "-c", MNIST_MLP, "--trainer.max_epoch", "3")
    assert "unknown config key 'trainer.max_epoch'" in message
    assert "litlab fit --help" in message


def test_wrong_value_type_names_the_key():
    message = run_cli_error("fit", "-c", MNIST_MLP, "--model.lr", "fast")
    assert "invalid value for 'model.lr'" in message
    assert "float" in message


def test_missing_config_file():
    message = run_cli_error("fit", "-c", "experiments/vision/nope.yaml")
    assert "config file not found" in message
    assert "nope.yaml" in message


def test_data_root_that_is_not_a_directory(tmp_path):
    a_file = tmp_path / "data.txt"
    a_file.write_text("")
    message = run_cli_error("fit", "-c", MNIST_MLP, "--data.init_args.data_dir", str(a_file))
    assert "is not a directory" in message
    assert "LITLAB_DATA" in message


def test_data_missing_and_no_network(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def no_network(self):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz: Name or service not known"
        )

    monkeypatch.setattr(MNIST, "download", no_network)
    empty = tmp_path / "empty"
    empty.mkdir()
    message = run_cli_error(
        "fit",
        "-c",
        MNIST_MLP,
        "--data.init_args.data_dir",
        str(empty),
        "--trainer.fast_dev_run",
        "1",
    )
    assert "MNIST is not in" in message
    assert "download failed" in message
    assert "train-images-idx3-ubyte" in message
    assert "LITLAB_DATA" in message


def test_best_checkpoint_before_any_training():
    message = run_cli_error("test", "-c", MNIST_MLP, "--ckpt_path", "best")
    assert "no 'best' checkpoint" in message
    assert "runs/mnist_mlp" in message


def test_missing_checkpoint_file():
    message = run_cli_error("test", "-c", MNIST_MLP, "--ckpt_path", "gone.ckpt")
    assert "checkpoint not found: gone.ckpt" in message


def test_print_config_applies_dotted_overrides(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", MNIST_MLP, "--model.lr", "0.0003", "--print_config"])
    assert exit_info.value.code in (None, 0)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["init_args"]["lr"] == pytest.approx(3e-4)
    assert config["seed_everything"] == 42
    assert config["trainer"]["logger"]["class_path"] == "litlab.app.tracking.WandbLogger"


def test_the_network_key_of_an_earlier_litlab_is_named_with_its_new_name(tmp_path):
    config = yaml.safe_load(Path(MNIST_MLP).read_text())
    config["model"]["init_args"]["model"] = config["model"]["init_args"].pop("network")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(config))
    from_file = run_cli_error("fit", "-c", str(old))
    from_argv = run_cli_error(
        "fit", "-c", MNIST_MLP, "--model.model.init_args.hidden_features", "[16]"
    )
    for message in (from_file, from_argv):
        assert "Tasks take their network as `network` now" in message
        assert "--model.network" in message
    assert "network as" not in run_cli_error("fit", "-c", MNIST_MLP, "--model.nope", "3")
