"""SampleEvaluation end to end: a stand-in generative task whose "samples" are the real test
images scores FID ~0 and the classifier's own confidence on real data; noise scores a large FID."""

import json

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from tiny_classifier import tiny_classifier_runs
from torch import nn
from torchvision import datasets

from litlab.core.errors import LitlabError
from litlab.generative.callbacks import sample_evaluation
from litlab.generative.callbacks.sample_evaluation import SampleEvaluation
from litlab.vision.data.mnist import MNISTDataModule

REAL_IMAGES = 300  # 3 test batches of 100


class Replay(LightningModule):
    """Stands in for a generative task: ``sample_images`` hands out ``images`` in order, or
    uniform noise when there are none."""

    def __init__(self, images=None):
        super().__init__()
        self.images = images
        self.cursor = 0
        self.unused = nn.Linear(1, 1)

    def test_step(self, batch, batch_idx):
        return None

    def sample_images(self, n):
        if self.images is None:
            return torch.rand(n, 1, 28, 28)
        batch = self.images[self.cursor : self.cursor + n]
        self.cursor += n
        return batch


def evaluation(*args, **kwargs):
    """SampleEvaluation with 10 KID subsets: the default 100 cost seconds and prove nothing more."""
    return SampleEvaluation(*args, kid_subsets=10, **kwargs)


class NoSampler(Replay):
    sample_images = None


@pytest.fixture
def runs(data_root, tmp_path_factory):
    return tiny_classifier_runs(tmp_path_factory)


@pytest.fixture
def real_images(data_root):
    """The first MNIST test images in [0, 1], in the test loader's order."""
    return datasets.MNIST(data_root, train=False).data[:REAL_IMAGES].unsqueeze(1).float() / 255


def evaluate(module, callback, data_root, tmp_path, pixel_range="symmetric"):
    trainer = Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[callback],
        limit_test_batches=REAL_IMAGES // 100,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    datamodule = MNISTDataModule(
        data_dir=str(data_root), batch_size=100, num_workers=0, pixel_range=pixel_range
    )
    (results,) = trainer.test(module, datamodule=datamodule, verbose=False)
    return results


@pytest.mark.parametrize("pixel_range", ["symmetric", "standardized", "unit"])
def test_real_images_as_samples_score_like_the_test_set(
    runs, real_images, data_root, tmp_path, pixel_range
):
    callback = evaluation(
        "mnist_cnn", num_samples=REAL_IMAGES, sample_batch_size=128, runs_root=str(runs)
    )
    results = evaluate(Replay(real_images), callback, data_root, tmp_path, pixel_range)

    # The test batches, mapped back to [0, 1] from any pixel_range, are the samples exactly.
    assert results["test/fid_mnist_cnn"] == pytest.approx(0.0, abs=1e-3)
    # The unbiased MMD estimate of a set against itself is at most 0 (the kernel is PSD).
    assert results["test/kid_mnist_cnn"] <= 0
    assert results["test/confident_share"] == results["test/confident_share_real"]
    assert 0 < results["test/confident_share"] < 1
    assert results["test/label_entropy"] > 0.9  # ten digits, about evenly

    saved = json.loads((tmp_path / "sample_evaluation.json").read_text())
    assert saved["feature_network"] == "mnist_cnn"
    assert saved["num_samples"] == saved["num_real"] == REAL_IMAGES
    assert saved["classifier_checkpoint"].endswith("best.ckpt")
    assert saved["fid_mnist_cnn"] == pytest.approx(results["test/fid_mnist_cnn"])
    assert len(saved["label_histogram"]) == 10
    assert sum(saved["label_histogram"]) == pytest.approx(1.0)


def test_noise_scores_a_large_distance_repeatably(runs, real_images, data_root, tmp_path):
    callback = evaluation("mnist_cnn", num_samples=200, runs_root=str(runs), seed=3)
    noise = evaluate(Replay(), callback, data_root, tmp_path)
    again = evaluate(Replay(), callback, data_root, tmp_path)
    real = evaluate(
        Replay(real_images),
        evaluation("mnist_cnn", num_samples=REAL_IMAGES, runs_root=str(runs)),
        data_root,
        tmp_path,
    )

    assert noise["test/fid_mnist_cnn"] > 1.0
    assert noise["test/fid_mnist_cnn"] > 1000 * real["test/fid_mnist_cnn"]
    assert noise["test/kid_mnist_cnn"] > 10 * abs(real["test/kid_mnist_cnn"])
    assert noise == again  # seeded sampling


def test_checkpoint_path_and_inception_features(
    runs, real_images, data_root, tmp_path, monkeypatch
):
    class SmallInception(nn.Module):
        """Stands in for the Inception network (a download): 2x2 average-pooled pixels."""

        name, num_features = "inception", 4

        def __init__(self, weights_path=None):
            super().__init__()

        def forward(self, images):
            return nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)

    monkeypatch.setattr(sample_evaluation, "InceptionFeatures", SmallInception)
    best = next(runs.rglob("best.ckpt"))
    callback = evaluation(str(best), num_samples=REAL_IMAGES, feature="inception")
    results = evaluate(Replay(real_images), callback, data_root, tmp_path)

    assert results["test/fid_inception"] == pytest.approx(0.0, abs=1e-6)
    assert "test/fid_mnist_cnn" not in results
    assert results["test/confident_share"] == results["test/confident_share_real"]

    no_classifier = evaluation(num_samples=REAL_IMAGES, feature="inception")
    results = evaluate(Replay(), no_classifier, data_root, tmp_path)
    assert set(results) == {"test/fid_inception", "test/kid_inception", "test/kid_inception_std"}


def test_an_untrained_classifier_says_how_to_train_it(runs, data_root, tmp_path):
    callback = evaluation("mnist_cnn", runs_root=str(tmp_path / "empty"))
    with pytest.raises(
        LitlabError, match=r"uv run litlab fit -c experiments/vision/mnist_cnn\.yaml"
    ):
        evaluate(Replay(), callback, data_root, tmp_path)
    with pytest.raises(LitlabError, match="classifier checkpoint not found"):
        evaluate(Replay(), evaluation(str(tmp_path / "gone.ckpt")), data_root, tmp_path)


def test_broken_sample_contracts_are_refused(runs, data_root, tmp_path):
    callback = evaluation("mnist_cnn", num_samples=10, runs_root=str(runs))
    with pytest.raises(LitlabError, match=r"sample_images\(n\)"):
        evaluate(NoSampler(), callback, data_root, tmp_path)
    with pytest.raises(LitlabError, match=r"values in \[0, 1\]"):
        evaluate(Replay(torch.full((10, 1, 28, 28), 2.0)), callback, data_root, tmp_path)
    with pytest.raises(LitlabError, match=r"shape \(10, 1, 28, 28\)"):
        evaluate(Replay(torch.zeros(10, 1, 32, 32)), callback, data_root, tmp_path)


def test_options_are_checked():
    with pytest.raises(LitlabError, match="needs a classifier"):
        SampleEvaluation()
    with pytest.raises(LitlabError, match="feature must be"):
        SampleEvaluation("mnist_cnn", feature="vgg")
    with pytest.raises(LitlabError, match="num_samples must be at least 2"):
        SampleEvaluation("mnist_cnn", num_samples=1)
