"""InceptionFeatures: what the Inception network is given, and clear errors when it cannot be
had (torch-fidelity missing, weights not downloadable). The real network is a ~100 MB download,
so a stand-in replaces it here."""

import importlib.util
from urllib.error import URLError

import pytest
import torch
from torch import nn

from litlab.core.errors import LitlabError
from litlab.generative.metrics import inception_features
from litlab.generative.metrics.inception_features import InceptionFeatures


class RecordingInception(nn.Module):
    def __init__(self, name, features_list, feature_extractor_weights_path=None):
        super().__init__()
        self.features_list = features_list
        self.weights_path = feature_extractor_weights_path
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x)
        return torch.zeros(x.shape[0], 2048)


def test_grey_images_in_unit_range_become_rgb_bytes(monkeypatch):
    monkeypatch.setattr(inception_features, "NoTrainInceptionV3", RecordingInception)
    features = InceptionFeatures(weights_path="inception.pth")
    images = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)

    assert features(images).shape == (1, 2048)
    (given,) = features.network.inputs
    assert given.dtype == torch.uint8
    assert given.shape == (1, 3, 1, 3)
    assert given[0, :, 0].tolist() == [[0, 127, 255]] * 3
    assert features.network.features_list == ["2048"]
    assert features.network.weights_path == "inception.pth"
    assert (features.name, features.num_features) == ("inception", 2048)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (ModuleNotFoundError("No module named 'torch_fidelity'"), "need torch-fidelity"),
        (URLError("no network"), "Inception weights could not be loaded"),
    ],
)
def test_missing_package_or_weights_say_what_to_do(monkeypatch, failure, message):
    def unavailable(*args, **kwargs):
        raise failure

    monkeypatch.setattr(inception_features, "NoTrainInceptionV3", unavailable)
    with pytest.raises(LitlabError, match=message) as raised:
        InceptionFeatures()
    assert "feature: classifier" in str(raised.value)


def test_without_torch_fidelity_the_real_network_says_so():
    if importlib.util.find_spec("torch_fidelity") is not None:
        pytest.skip("torch-fidelity is installed here")
    with pytest.raises(LitlabError, match="need torch-fidelity"):
        InceptionFeatures()
