"""ClassifierFeatures: a `litlab fit` classifier checkpoint as penultimate features and class
probabilities of [0, 1] images, normalised as the classifier was trained."""

import shutil

import pytest
import torch
import yaml
from tiny_classifier import tiny_classifier_runs
from torch import nn
from torchvision import datasets

from litlab.core.checkpoints.run_lookup import find_checkpoint
from litlab.core.errors import LitlabError
from litlab.generative.metrics.classifier_features import ClassifierFeatures
from litlab.vision.data.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from litlab.vision.data.mnist import MNIST_MEAN, MNIST_STD
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.tasks.classification import ImageClassifier


@pytest.fixture
def best_ckpt(data_root, tmp_path_factory):
    return find_checkpoint(tiny_classifier_runs(tmp_path_factory), "mnist_cnn", "best")


@pytest.fixture
def test_images(data_root):
    """The first 64 MNIST test digits in [0, 1]."""
    return datasets.MNIST(data_root, train=False).data[:64].unsqueeze(1).float() / 255


def run_copy(best_ckpt, tmp_path):
    """A copy of the classifier's run folder, to edit its config or checkpoint."""
    run = shutil.copytree(best_ckpt.parent.parent, tmp_path / "runs" / "copy" / "run")
    return run / "checkpoints" / "best.ckpt"


@torch.no_grad()
def test_features_and_probabilities_match_the_trained_network(best_ckpt, test_images):
    features = ClassifierFeatures.from_checkpoint(best_ckpt)
    task = ImageClassifier.load_from_checkpoint(best_ckpt, map_location="cpu").eval()
    standardized = (test_images - MNIST_MEAN[0]) / MNIST_STD[0]
    net = task.network  # SmallCNN: features, then Flatten, Dropout, MLP(Linear-ReLU-Dropout-Linear)
    linear, relu, dropout, _ = net.classifier[2]
    expected_features = dropout(relu(linear(net.classifier[:2](net.features(standardized)))))

    got_features, got_probabilities = features.features_and_probabilities(test_images)

    assert features.name == "mnist_cnn"  # the experiment of the run, from its config.yaml
    assert (features.num_features, features.num_classes) == (32, 10)
    torch.testing.assert_close(got_features, expected_features)
    torch.testing.assert_close(got_probabilities, task(standardized).softmax(dim=-1))
    torch.testing.assert_close(features(test_images), expected_features)
    torch.testing.assert_close(features.probabilities(test_images), got_probabilities)


@torch.no_grad()
def test_the_trained_classifier_recognises_digits(best_ckpt, data_root, test_images):
    labels = datasets.MNIST(data_root, train=False).targets[:64]
    predicted = ClassifierFeatures.from_checkpoint(best_ckpt).probabilities(test_images).argmax(1)
    assert (predicted == labels).float().mean() > 0.6  # chance is 0.1


def test_normalisation_comes_from_the_run_config(best_ckpt):
    features = ClassifierFeatures.from_checkpoint(best_ckpt)
    assert features.mean.flatten().tolist() == pytest.approx(MNIST_MEAN)
    assert features.std.flatten().tolist() == pytest.approx(MNIST_STD)


@pytest.mark.parametrize(
    ("pixel_range", "mean", "std"), [("unit", 0.0, 1.0), ("symmetric", 0.5, 0.5)]
)
def test_pixel_range_of_the_run_sets_the_normalisation(best_ckpt, tmp_path, pixel_range, mean, std):
    ckpt = run_copy(best_ckpt, tmp_path)
    config_file = ckpt.parent.parent / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["data"]["init_args"]["pixel_range"] = pixel_range
    config_file.write_text(yaml.safe_dump(config))

    features = ClassifierFeatures.from_checkpoint(ckpt)
    assert features.mean.flatten().tolist() == [mean]
    assert features.std.flatten().tolist() == [std]


def test_saved_datamodule_hyperparameters_come_first(best_ckpt, tmp_path):
    checkpoint = torch.load(best_ckpt, weights_only=False)
    checkpoint["datamodule_hyper_parameters"] = {
        "_class_path": "litlab.vision.data.fashion_mnist.FashionMNISTDataModule"
    }
    ckpt = run_copy(best_ckpt, tmp_path)
    torch.save(checkpoint, ckpt)

    features = ClassifierFeatures.from_checkpoint(ckpt)
    assert features.mean.flatten().tolist() == pytest.approx(FASHION_MNIST_MEAN)
    assert features.std.flatten().tolist() == pytest.approx(FASHION_MNIST_STD)


def test_outside_its_run_folder_the_normalisation_must_be_given(best_ckpt, tmp_path):
    lone = shutil.copy(best_ckpt, tmp_path / "classifier.ckpt")
    with pytest.raises(LitlabError, match="cannot tell how the classifier"):
        ClassifierFeatures.from_checkpoint(lone)

    features = ClassifierFeatures.from_checkpoint(lone, mean=[0.5], std=[0.25])
    assert features.name == "classifier"  # the file's stem
    assert features.mean.flatten().tolist() == [0.5]
    assert features.std.flatten().tolist() == [0.25]


def test_checkpoint_errors_say_what_to_do(best_ckpt, tmp_path):
    with pytest.raises(LitlabError, match="classifier checkpoint not found"):
        ClassifierFeatures.from_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(LitlabError, match="both the mean and the std"):
        ClassifierFeatures.from_checkpoint(best_ckpt, mean=[0.5])

    checkpoint = torch.load(best_ckpt, weights_only=False)
    del checkpoint["hyper_parameters"]["_class_path"]
    torch.save(checkpoint, tmp_path / "bare.ckpt")
    with pytest.raises(LitlabError, match=r"litlab fit -c experiments/vision/mnist_cnn\.yaml"):
        ClassifierFeatures.from_checkpoint(tmp_path / "bare.ckpt")


@torch.no_grad()
def test_any_network_ending_in_a_linear_layer(test_images):
    net = MLPClassifier(in_features=784, hidden_features=[24, 12], num_classes=10).eval()
    features = ClassifierFeatures(net, mean=[0.5], std=[0.5])
    standardized = (test_images - 0.5) / 0.5

    assert features.num_features == 12
    hidden = standardized.flatten(1)
    for layer in list(net.mlp)[:-1]:
        hidden = layer(hidden)
    torch.testing.assert_close(features(test_images), hidden)
    torch.testing.assert_close(
        features.probabilities(test_images), net(standardized).softmax(dim=-1)
    )


def test_stays_in_eval_mode():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Dropout(0.9), nn.Linear(8, 3))
    features = ClassifierFeatures(net, mean=[0.0], std=[1.0]).train()
    assert not net.training
    images = torch.rand(5, 1, 2, 2)
    torch.testing.assert_close(features(images), features(images))  # dropout stays off


def test_networks_it_cannot_read_are_refused():
    with pytest.raises(LitlabError, match=r"no nn\.Linear"):
        ClassifierFeatures(nn.Sequential(nn.Flatten()), mean=[0.0], std=[1.0])
    # The last Linear's output is not the network's output: its input is no penultimate layer.
    after_head = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=-1))
    with pytest.raises(LitlabError, match="does not produce its output"):
        ClassifierFeatures(after_head, mean=[0.0], std=[1.0])(torch.rand(2, 1, 2, 2))
    with pytest.raises(LitlabError, match=r"expects images \(N, 1, H, W\)"):
        ClassifierFeatures(after_head, mean=[0.0], std=[1.0])(torch.rand(2, 3, 2, 2))
