"""What the data knows reaches the task and its network through the links of
litlab.app.data_links, and a config that contradicts the data is refused."""

import re
from pathlib import Path

import pytest
import torch

from litlab.app.cli import LitlabCLI
from litlab.app.cli_errors import find_litlab_error
from litlab.app.data_links import DATA_LINKS, NETWORK, REQUIRED, DataLinkError, Stated, resolve
from litlab.core.data_facts import DataFacts, data_facts_of

REPO = Path(__file__).resolve().parents[2]
MNIST_CNN = REPO / "experiments/vision/mnist_cnn.yaml"


def build(tmp_path, *args):
    """The task the command would build (nothing runs)."""
    return LitlabCLI(
        args=["-c", str(MNIST_CNN), "--runs_root", str(tmp_path), "--trainer.logger", "false",
              "--data.init_args.data_dir", str(tmp_path / "data"), *args],
        run=False,
    ).model  # fmt: skip


def test_the_config_states_no_value_the_data_knows():
    for config in (REPO / "experiments").rglob("*.yaml"):
        text = config.read_text()
        for key in ("in_channels", "image_size", "num_labels", "in_features"):
            assert not re.search(rf"^\s+{key}:", text, re.M), (config, key)
        assert not re.search(r"^    num_classes:", text, re.M), config


def test_the_data_gives_the_task_and_the_network_their_sizes(tmp_path):
    task = build(tmp_path)
    assert task.num_classes == 10
    assert (task.network.in_channels, task.network.image_size) == (1, 28)
    logits = [m for m in task.network.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert logits.out_features == 10  # the network's num_classes
    assert task.hparams["num_classes"] == 10


def test_cifar_data_builds_a_three_channel_network(tmp_path):
    task = build(
        tmp_path, "--data", "litlab.vision.data.cifar10.CIFAR10DataModule",
        "--data.init_args.data_dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert (task.network.in_channels, task.network.image_size) == (3, 32)


def test_a_value_equal_to_the_data_is_accepted(tmp_path):
    task = build(tmp_path, "--model.init_args.num_classes", "10")
    assert task.num_classes == 10


@pytest.mark.parametrize(
    "key", ["model.init_args.num_classes", "model.init_args.network.init_args.num_classes"]
)
def test_a_value_that_contradicts_the_data_is_refused(tmp_path, key):
    with pytest.raises(ValueError, match="contradicts the data") as caught:
        build(tmp_path, f"--{key}", "7")
    error = find_litlab_error(caught.value)
    assert isinstance(error, DataLinkError)
    assert str(error).startswith(f"{key}: 7 contradicts the data: MNISTDataModule has ")
    assert f"Remove {key} from the config" in str(error)


def test_resolve_rules():
    def value(stated, default, data, fact="num_classes"):
        return resolve(fact, "t", Stated(stated, default, "Net"), data, "DM")

    assert value(None, REQUIRED, 10) == 10
    assert value(10, 10, 100) == 100  # a default is no choice
    assert value(None, None, 10) is None  # an optional feature left off stays off
    assert value([1, 28, 28], (1, 28, 28), (1, 28, 28)) == (1, 28, 28)
    assert value(32, REQUIRED, 15000, fact="vocab_size") == 32  # the data's is a cap
    assert value(7, REQUIRED, None) == 7  # the data does not know: the config decides
    with pytest.raises(DataLinkError, match="t is not set, and the data"):
        value(None, REQUIRED, None)
    with pytest.raises(DataLinkError, match="use data with num_classes 7"):
        value(7, 10, 10)


def test_every_link_names_a_data_fact_and_the_network_path_is_in_one_place():
    facts = DataFacts(image_shape=(3, 32, 32))
    for fact, target in DATA_LINKS:
        getattr(facts, fact)
        assert target.startswith(("model.init_args.", NETWORK))
    assert (facts.in_channels, facts.image_size, facts.in_features) == (3, 32, 3072)


def test_facts_of_a_datamodule_without_them_are_empty():
    assert data_facts_of(object()) == DataFacts()
    assert data_facts_of(None).classes is None


def test_tasks_and_callbacks_read_the_data_only_through_its_facts():
    # The duck-typed reads of trainer.datamodule attributes are gone from tasks and callbacks.
    sources = (REPO / "packages").glob("*/src/litlab/*/**/*.py")
    # data_facts_of is the one read; classifier_features reads a DataModule *class* named in a
    # checkpoint (no instance exists there).
    pattern = re.compile(r"getattr\((self\.)?(trainer\.)?datamodule\b|datamodule\.(classes|mean)")
    offenders = [p.name for p in sources if pattern.search(p.read_text())]
    assert offenders == ["data_facts.py"]


def test_the_task_hyperparameters_hold_only_the_links_its_classes_take(tmp_path):
    """Skipped links would make the checkpoint name arguments SmallCNN lacks (refused on
    resume)."""
    hparams = build(tmp_path).hparams
    network = hparams["network"]["init_args"]
    assert (network["in_channels"], network["image_size"], network["num_classes"]) == (1, 28, 10)
    assert not {"num_labels", "in_features", "image_shape", "vocab_size"} & network.keys()


def test_parameters_come_through_import_class_and_an_unknown_class_has_none():
    from litlab.app.data_links import _parameters

    assert "total_steps" in _parameters("litlab.core.schedulers.OneCycleLR")
    # jsonargparse names a class it cannot import; the links then state nothing.
    for path in ("no_such_package.Net", "litlab.core.schedulers.NoSuchLR", "Net"):
        assert _parameters(path) == {}
