"""The Inception-v3 pool features of FID's standard definition, for images in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.image.fid import NoTrainInceptionV3

from litlab.core.errors import LitlabError

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


class InceptionFeatures(nn.Module):
    """torchmetrics' Inception-v3 (the TensorFlow FID network, through torch-fidelity): the
    2048 pool features of images (N, C, H, W) in [0, 1], grey images repeated to RGB and all
    resized to 299x299 inside the network, as ``FrechetInceptionDistance`` does.

    The weights are downloaded on first use into the torch hub cache
    (``~/.cache/torch/hub/checkpoints/``) unless ``weights_path`` names the file.
    """

    name = "inception"
    num_features = 2048

    def __init__(self, weights_path: str | None = None) -> None:
        """Args:
        weights_path: torch-fidelity's Inception weights file
            (``weights-inception-2015-12-05-6726825d.pth``); default: download them.
        """
        super().__init__()
        try:
            self.network = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=[str(self.num_features)],
                feature_extractor_weights_path=weights_path,
            )
        except ModuleNotFoundError as err:
            raise LitlabError(
                "FID/KID on Inception features need torch-fidelity, which is not installed: "
                "`uv pip install torch-fidelity` (or torchmetrics[image]), or use the "
                "classifier's features (feature: classifier)."
            ) from err
        except (OSError, RuntimeError) as err:
            raise LitlabError(
                f"the Inception weights could not be loaded ({err}). They are downloaded on "
                f"first use from torch-fidelity's GitHub release ({INCEPTION_WEIGHTS}); offline, "
                f"copy that file here and give its path (inception_weights), or use the "
                f"classifier's features (feature: classifier)."
            ) from err

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        # The network takes uint8 pixels, converted as FrechetInceptionDistance(normalize=True).
        return self.network((images * 255).byte())
