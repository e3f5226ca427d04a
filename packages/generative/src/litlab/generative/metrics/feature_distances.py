"""FID and KID between real and generated images, on features of any network."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class _Features(nn.Identity):
    """The feature network torchmetrics is given: features arrive already computed, so one
    pass of the real network serves FID, KID and the classifier's probabilities alike."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


class FeatureDistances(nn.Module):
    """Fréchet distance (FID, Heusel et al. 2017) and kernel distance (KID, Bińkowski et al.
    2018) between the features of real and of generated images, through torchmetrics'
    ``FrechetInceptionDistance`` and ``KernelInceptionDistance``.

    FID is ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` of the features' means and
    (unbiased) covariances; KID is the unbiased squared MMD under the cubic polynomial kernel
    ``(x.y / d + 1)^3``, averaged over random subsets. Both are 0 for identical distributions
    and depend on the feature network, so report which one was used. States sum (FID) or
    gather (KID) across processes.
    """

    def __init__(
        self, num_features: int, kid_subsets: int = 100, kid_subset_size: int = 1000
    ) -> None:
        """Args:
        num_features: Size of each feature vector.
        kid_subsets: Random subsets KID is averaged over.
        kid_subset_size: Samples per KID subset; capped by the number of real and generated
            samples (this process's) at compute time.
        """
        super().__init__()
        self.kid_subset_size = kid_subset_size
        self.fid = FrechetInceptionDistance(feature=_Features(num_features))
        with warnings.catch_warnings():
            # "will save all extracted features in buffer": KID needs them; N x num_features values.
            warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance`")
            self.kid = KernelInceptionDistance(
                feature=_Features(num_features), subsets=kid_subsets, subset_size=kid_subset_size
            )

    def update(self, features: torch.Tensor, real: bool) -> None:
        """Adds features (N, num_features) of real (``real=True``) or generated images."""
        features = features.detach().double()
        self.fid.update(features, real=real)
        self.kid.update(features, real=real)

    def compute(self) -> dict[str, torch.Tensor]:
        """``{"fid", "kid", "kid_std"}``; needs at least 2 real and 2 generated samples."""
        counts = (self.fid.real_features_num_samples, self.fid.fake_features_num_samples)
        if min(counts) < 2:
            raise ValueError(
                f"FID needs at least 2 real and 2 generated samples, got {counts[0]} and "
                f"{counts[1]}"
            )
        self.kid.subset_size = min(self.kid_subset_size, *(int(n) for n in counts))
        kid, kid_std = self.kid.compute()
        return {"fid": self.fid.compute().float(), "kid": kid.float(), "kid_std": kid_std.float()}

    def reset(self) -> None:
        self.fid.reset()
        self.kid.reset()
