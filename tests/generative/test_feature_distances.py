"""FeatureDistances: FID against the closed form of Gaussians with known statistics, KID against
the unbiased polynomial-kernel MMD computed by hand."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from litlab.generative.metrics.feature_distances import FeatureDistances


def with_statistics(n, mean, cov, seed):
    """n samples whose sample mean and (unbiased) sample covariance are exactly mean and cov."""
    mean, cov = torch.tensor(mean, dtype=torch.float64), torch.tensor(cov, dtype=torch.float64)
    x = torch.randn(
        n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    x = x - x.mean(dim=0)
    whiten = torch.linalg.inv(torch.linalg.cholesky(x.T @ x / (n - 1)))
    return x @ whiten.T @ torch.linalg.cholesky(cov).T + mean


def distances(real, fake, **kwargs):
    metric = FeatureDistances(real.shape[1], **kwargs)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric.compute()


def frechet_closed_form(mu1, s1, mu2, s2):
    mu1, s1, mu2, s2 = (np.atleast_1d(np.array(v, dtype=float)) for v in (mu1, s1, mu2, s2))
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_frechet_distance_of_identical_features_is_zero():
    features = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    result = distances(features, features.clone())
    assert result["fid"].item() == pytest.approx(0.0, abs=1e-5)


def test_frechet_distance_1d_by_hand():
    # N(0, 1) vs N(3, 4): (3 - 0)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 10.
    real = with_statistics(200, [0.0], [[1.0]], seed=1)
    fake = with_statistics(150, [3.0], [[4.0]], seed=2)
    assert distances(real, fake)["fid"].item() == pytest.approx(10.0, rel=1e-5)


def test_frechet_distance_2d_diagonal_by_hand():
    # N(0, I) vs N((1, 2), diag(4, 9)): 1 + 4 + (2 + 13 - 2 * (2 + 3)) = 10.
    real = with_statistics(200, [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], seed=3)
    fake = with_statistics(200, [1.0, 2.0], [[4.0, 0.0], [0.0, 9.0]], seed=4)
    assert distances(real, fake)["fid"].item() == pytest.approx(10.0, rel=1e-5)


def test_frechet_distance_2d_correlated_matches_the_closed_form():
    mu1, s1 = [0.5, -1.0], [[2.0, 1.0], [1.0, 2.0]]
    mu2, s2 = [1.5, 0.0], [[1.0, -0.5], [-0.5, 3.0]]
    real, fake = with_statistics(400, mu1, s1, seed=5), with_statistics(300, mu2, s2, seed=6)
    expected = frechet_closed_form(mu1, s1, mu2, s2)
    assert distances(real, fake)["fid"].item() == pytest.approx(expected, rel=1e-5)


def test_frechet_distance_accumulates_over_batches():
    real = with_statistics(200, [0.0], [[1.0]], seed=1)
    fake = with_statistics(150, [3.0], [[4.0]], seed=2)
    metric = FeatureDistances(1)
    for chunk in real.split(64):
        metric.update(chunk, real=True)
    for chunk in fake.split(40):
        metric.update(chunk, real=False)
    assert metric.compute()["fid"].item() == pytest.approx(10.0, rel=1e-5)
    metric.reset()
    with pytest.raises(ValueError, match="at least 2 real and 2 generated"):
        metric.compute()


def test_kernel_distance_by_hand():
    real = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    fake = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)

    def kernel(x, y):  # cubic polynomial kernel, gamma = 1 / dimension = 1, coef = 1
        return (x * y + 1) ** 3

    xs, ys, m = real.flatten().tolist(), fake.flatten().tolist(), 3
    same_real = sum(kernel(a, b) for a, b in itertools.permutations(xs, 2))
    same_fake = sum(kernel(a, b) for a, b in itertools.permutations(ys, 2))
    across = sum(kernel(a, b) for a in xs for b in ys)
    expected = (same_real + same_fake) / (m * (m - 1)) - 2 * across / m**2

    # Subsets of all 3 samples: every subset gives the same value.
    result = distances(real, fake, kid_subsets=5, kid_subset_size=3)
    assert result["kid"].item() == pytest.approx(expected, rel=1e-6)
    assert result["kid_std"].item() == pytest.approx(0.0, abs=1e-6)


def test_kernel_distance_subsets_shrink_to_the_samples_there_are():
    real = torch.randn(40, 3, generator=torch.Generator().manual_seed(7))
    fake = torch.randn(30, 3, generator=torch.Generator().manual_seed(8)) + 2.0
    result = distances(real, fake, kid_subsets=10, kid_subset_size=1000)
    same = distances(real, real[:30].clone(), kid_subsets=10, kid_subset_size=1000)
    assert result["kid"].item() > 10 * abs(same["kid"].item())
    assert result["fid"].item() > 10 * same["fid"].item()
