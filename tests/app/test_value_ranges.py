"""Values out of an argument's range are refused while parsing: one line naming the key, the
value and the range, and no run folder."""

import typing
from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentParser

from litlab.app.cli import main
from litlab.core.number_types import (
    NUMBER_TYPES,
    ClosedUnitInterval,
    LeftOpenUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    NumClasses,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    RightOpenUnitInterval,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

CASES = [
    # (experiment, override, key, what the message says of the value and the range)
    (
        "vision/mnist_mlp",
        ["--model.lr", "-0.01"],
        "model.lr",
        "-0.01 is not a positive float (must be > 0)",
    ),
    (
        "vision/mnist_mlp",
        ["--data.batch_size", "0"],
        "data.batch_size",
        "0 is not a positive int (must be >= 1)",
    ),
    (
        "vision/mnist_mlp",
        ["--model.network.hidden_features", "[64, 0]"],
        "model.network.hidden_features",
        "0 is not a positive int (must be >= 1)",
    ),
    (
        "nlp/shakespeare_char_gpt",
        ["--model.network.dropout", "1.5"],
        "model.network.dropout",
        "1.5 is not in [0, 1)",
    ),
    # An optional value: inside the Union, jsonargparse cuts the value out of the message.
    (
        "nlp/shakespeare_char_gpt",
        ["--model.top_k", "0"],
        "model.top_k",
        "0 is not a positive int (must be >= 1)",
    ),
    (
        "generative/mnist_vae_conv",
        ["--model.beta", "-1"],
        "model.beta",
        "-1.0 is not a non-negative float (must be >= 0)",
    ),
    (
        "vision/mnist_mlp",
        ["--trainer.max_epochs", "-5"],
        "trainer.max_epochs",
        "-5 is out of range (must be >= 0, or -1 for no limit)",
    ),
]


pytestmark = pytest.mark.usefixtures("cli_process")


@pytest.mark.parametrize(
    ("experiment", "override", "key", "says"), CASES, ids=[case[2] for case in CASES]
)
def test_a_value_out_of_range_stops_before_the_run(in_tmp_dir, experiment, override, key, says):
    config = str(EXPERIMENTS / f"{experiment}.yaml")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", config, "--trainer.logger", "false", *override])
    message = str(exit_info.value.code)
    assert message.startswith(f"litlab: error: invalid value for '{key}': {says}"), message
    assert "\n" not in message
    assert not (in_tmp_dir / "runs").exists()


def test_a_value_out_of_range_in_the_config_file(in_tmp_dir):
    config = (EXPERIMENTS / "vision" / "mnist_mlp.yaml").read_text()
    bad = in_tmp_dir / "bad.yaml"
    bad.write_text(config.replace("label_smoothing: 0.1", "label_smoothing: 1.0"))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(bad)])
    assert str(exit_info.value.code).startswith(
        "litlab: error: invalid value for 'model.label_smoothing': 1.0 is not in [0, 1)"
    )
    assert not (in_tmp_dir / "runs").exists()


class _Configured:
    def __init__(
        self,
        lr: PositiveFloat = 1e-3,
        warmup: NonNegativeInt | None = None,
        widths: list[PositiveInt] | None = None,
    ) -> None:
        self.lr, self.warmup, self.widths = lr, warmup, widths


def test_parsed_values_are_plain_numbers(tmp_path):
    # Instances of the range types would reach saved state (an optimizer's weight_decay, a
    # scheduler's warm-up) and make torch.load(weights_only=True) refuse the checkpoint.
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(_Configured, "configured")
    config = parser.parse_args(["--configured.lr=0.5", "--configured.warmup=3"])
    config = parser.parse_args(["--configured.widths=[2, 3]"], config)
    built = parser.instantiate(config).configured
    assert (type(built.lr), type(built.warmup), type(built.widths[0])) == (float, int, int)
    torch.save(vars(built), tmp_path / "state.pt")
    assert torch.load(tmp_path / "state.pt", weights_only=True) == vars(built)
    assert parser.dump(config).splitlines()[1:] == [
        "  lr: 0.5",
        "  warmup: 3",
        "  widths:",
        "  - 2",
        "  - 3",
    ]


@pytest.mark.parametrize(
    ("number_type", "inside", "outside"),
    [
        (PositiveInt, [1, "7"], [0, -1, 2.0, True, "x"]),
        (NonNegativeInt, [0, 5], [-1, 0.5]),
        (NumClasses, [2, 10], [1, 0]),
        (PositiveFloat, [1e-9, 1, "1e-3"], [0, -0.1, float("nan"), "fast"]),
        (NonNegativeFloat, [0, 0.5], [-1e-9]),
        (ClosedUnitInterval, [0, 1, 0.5], [-0.1, 1.1]),
        (RightOpenUnitInterval, [0, 0.99], [1, -0.1]),
        (LeftOpenUnitInterval, [1, 0.01], [0, 1.01]),
        (OpenUnitInterval, [0.5], [0, 1]),
    ],
)
def test_each_type_gives_the_plain_number_or_says_why_not(number_type, inside, outside):
    base = int if issubclass(number_type, int) else float
    assert number_type in NUMBER_TYPES
    for value in inside:
        number = number_type(value)
        assert type(number) is base
        assert number == base(value)
    for value in outside:
        with pytest.raises(ValueError, match=r" is not ") as error:
            number_type(value)
        assert str(value) in str(error.value) or repr(value) in str(error.value)


def _annotation(import_path: str, parameter: str) -> object:
    module_name, class_name = import_path.rsplit(".", 1)
    cls = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    return typing.get_type_hints(cls.__init__)[parameter]


@pytest.mark.parametrize(
    ("import_path", "parameter", "expected"),
    [
        ("litlab.core.task.Task", "lr", PositiveFloat),
        ("litlab.core.schedulers.WarmupCosineLR", "warmup_steps", NonNegativeInt),
        ("litlab.vision.tasks.classification.ImageClassifier", "num_classes", NumClasses),
        ("litlab.vision.data.mnist.MNISTDataModule", "num_workers", NonNegativeInt),
        ("litlab.vision.models.cnn.SmallCNN", "dropout", RightOpenUnitInterval),
        ("litlab.nlp.data.char_text.CharTextDataModule", "val_fraction", OpenUnitInterval),
        ("litlab.nlp.tasks.language_model.LanguageModel", "top_p", LeftOpenUnitInterval | None),
        (
            "litlab.generative.tasks.diffusion.DiffusionModel",
            "cond_drop_prob",
            RightOpenUnitInterval,
        ),
        ("litlab.generative.callbacks.vae_pictures.VAEPictures", "every_n_epochs", PositiveInt),
    ],
)
def test_arguments_say_their_range(import_path, parameter, expected):
    assert _annotation(import_path, parameter) == expected
