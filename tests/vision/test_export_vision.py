"""`litlab export` of the image classifiers: the ONNX and TorchScript files give the PyTorch
network's logits at batch sizes 1 and 3, and the sidecar says how to prepare the images."""

import json

import numpy as np
import onnxruntime
import pytest
import torch
from tiny_classifier import tiny_classifier_runs

from litlab.app.cli import main
from litlab.app.export.formats import OnnxFormat
from litlab.core.errors import LitlabError
from litlab.vision.data.cifar10 import CIFAR10DataModule
from litlab.vision.data.mnist import MNIST_MEAN, MNIST_STD, MNISTDataModule
from litlab.vision.models.cifar_resnet import CIFARResNet
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.tasks.classification import ImageClassifier


def onnx_logits(path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": images.numpy()})[0]


@pytest.fixture
def trained_cnn(tmp_path_factory, data_root):
    """The runs root of a SmallCNN trained by `litlab fit -c experiments/vision/mnist_cnn.yaml`
    (a few steps), and its best checkpoint loaded by Lightning: the reference network."""
    runs = tiny_classifier_runs(tmp_path_factory)
    (checkpoint,) = runs.glob("mnist_cnn/*/checkpoints/best.ckpt")
    task = ImageClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    return runs, task.eval()


@pytest.mark.parametrize("export_format", ["onnx", "torchscript"])
def test_fitted_cnn_exports_and_matches_pytorch(trained_cnn, tmp_path, export_format):
    runs, task = trained_cnn
    output = tmp_path / f"cnn.{export_format}"
    main(["export", "--ckpt", "best", "--experiment", "mnist_cnn", "--runs_root", str(runs),
          "--format", export_format, "--output", str(output)])  # fmt: skip

    torch.manual_seed(0)
    for batch_size in (1, 3):
        images = torch.randn(batch_size, 1, 28, 28)
        with torch.no_grad():
            expected = task.network(images)
        if export_format == "onnx":
            got = torch.from_numpy(onnx_logits(output, images))
        else:
            got = torch.jit.load(str(output))(images)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)

    sidecar = json.loads(output.with_name(output.name + ".json").read_text())
    assert sidecar["inputs"] == [
        {"name": "images", "shape": ["batch", 1, 28, 28], "dtype": "float32"}
    ]
    assert sidecar["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32"}]
    assert sidecar["preprocessing"]["mean"] == list(MNIST_MEAN)
    assert sidecar["preprocessing"]["std"] == list(MNIST_STD)
    assert sidecar["class_names"] == [str(digit) for digit in range(10)]
    assert sidecar["network"] == "litlab.vision.models.cnn.SmallCNN"
    assert sidecar["validation"]["passed"]


@pytest.mark.parametrize(
    ("network", "datamodule"),
    [
        (MLPClassifier(784, [16]), MNISTDataModule()),
        (CIFARResNet(depth=8), CIFAR10DataModule()),
    ],
    ids=["mlp", "cifar_resnet"],
)
def test_mlp_and_resnet_export_to_onnx_with_a_dynamic_batch(network, datamodule, tmp_path):
    task = ImageClassifier(network, num_classes=10).eval()
    spec = task.export_spec(datamodule)
    path = tmp_path / "model.onnx"
    OnnxFormat().export(spec, path)

    torch.manual_seed(0)
    for batch_size in (1, 3):
        images = torch.randn(batch_size, *datamodule.image_shape)
        with torch.no_grad():
            expected = network(images).numpy()
        np.testing.assert_allclose(onnx_logits(path, images), expected, atol=1e-5, rtol=1e-4)


def test_image_shape_must_be_known():
    task = ImageClassifier(MLPClassifier(784, [16]), num_classes=10)
    with pytest.raises(LitlabError, match="ImageClassifier cannot be exported: the shape"):
        task.export_spec(None)
