"""Noise schedules: alpha_bar's shape, q(x_t | x_0) against its closed form, the posterior
against Bayes' rule, and the eps/v/x_0 conversions."""

import math

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.generative.diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas


@pytest.mark.parametrize(
    ("name", "num_timesteps"), [("linear", 1000), ("linear", 100), ("cosine", 1000), ("cosine", 10)]
)
def test_alpha_bar_decreases_within_zero_one(name, num_timesteps):
    schedule = NoiseSchedule.named(name, num_timesteps)
    alpha_bar = schedule.alpha_bar
    assert alpha_bar.shape == (num_timesteps,)
    assert ((alpha_bar > 0) & (alpha_bar < 1)).all()
    assert (alpha_bar[1:] < alpha_bar[:-1]).all()
    # Both end close to pure noise.
    assert alpha_bar[-1] < 1e-3


def test_linear_schedule_is_ho_et_al():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4)
    assert betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(
        betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64)
    )
    # Other lengths keep the total noise: both ends scaled by 1000 / T.
    assert linear_betas(250)[-1].item() == pytest.approx(0.08)


def test_cosine_schedule_is_nichol_and_dhariwal():
    T, s = 1000, 0.008
    schedule = NoiseSchedule(cosine_betas(T))
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    expected = torch.tensor([f[t + 1] / f[0] for t in range(T)], dtype=torch.float64)
    # Equal until the clipping of betas at 0.999 (the last step only).
    assert torch.allclose(schedule.alpha_bar[:-1], expected[:-1], rtol=1e-9, atol=0)
    assert schedule.betas.max().item() == pytest.approx(0.999)


def test_bad_schedules_are_refused():
    with pytest.raises(LitlabError, match="cosine schedule"):
        NoiseSchedule.named("linear", 10)
    with pytest.raises(LitlabError, match="'linear' or 'cosine'"):
        NoiseSchedule.named("quadratic", 100)
    with pytest.raises(LitlabError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.0]))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_forward_noising_matches_its_closed_form(name):
    schedule = NoiseSchedule.named(name, 1000)
    x0 = torch.tensor([-1.0, -0.3, 0.5, 1.0]).view(4, 1, 1, 1)
    t = torch.tensor([0, 100, 500, 900])
    samples = 200_000
    generator = torch.Generator().manual_seed(0)
    # Each image is one value repeated over a row of `samples` pixels, each with its own noise.
    noise = torch.randn((4, 1, 1, samples), generator=generator)
    xt = schedule.q_sample(x0.expand(4, 1, 1, samples), t, noise)
    alpha_bar = torch.cumprod(1 - schedule.betas, 0)[t].float()
    mean, variance = schedule.q_mean_variance(x0, t)
    assert torch.allclose(mean.flatten(), alpha_bar.sqrt() * x0.flatten())
    assert torch.allclose(variance.flatten(), 1 - alpha_bar)
    # Standard errors: sqrt(var / n) for the mean, about var * sqrt(2 / n) for the variance.
    empirical_mean = xt.mean(dim=-1).flatten()
    empirical_var = xt.var(dim=-1).flatten()
    assert torch.allclose(empirical_mean, mean.flatten(), atol=5 * math.sqrt(1 / samples))
    assert torch.allclose(empirical_var, variance.flatten(), rtol=5 * math.sqrt(2 / samples))


def test_posterior_is_bayes_rule():
    # q(x_{t-1} | x_t, x_0) ∝ N(x_t; sqrt(a_t) x_{t-1}, b_t) N(x_{t-1}; sqrt(ab_prev) x_0,
    # 1 - ab_prev): a Gaussian whose precision is the sum of the two.
    schedule = NoiseSchedule.named("cosine", 100)
    t = torch.tensor([1, 20, 60, 99])
    x0 = torch.tensor([0.3, -0.7, 1.0, 0.0]).view(4, 1, 1, 1)
    xt = torch.tensor([1.2, 0.4, -2.0, 0.8]).view(4, 1, 1, 1)
    beta = schedule.betas[t].view(4, 1, 1, 1)
    alpha = 1 - beta
    ab_prev = torch.cumprod(1 - schedule.betas, 0)[t - 1].view(4, 1, 1, 1)
    precision = alpha / beta + 1 / (1 - ab_prev)
    mean = (
        alpha.sqrt() / beta * xt.double() + ab_prev.sqrt() / (1 - ab_prev) * x0.double()
    ) / precision
    assert torch.allclose(schedule.posterior_mean(x0, xt, t).double(), mean, atol=1e-5)
    assert torch.allclose(schedule.posterior_variance[t].view(4, 1, 1, 1), 1 / precision)
    assert schedule.posterior_variance[0] == 0


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_eps_and_v_conversions_round_trip(name):
    schedule = NoiseSchedule.named(name, 1000)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand((8, 3, 4, 4), generator=generator) * 2 - 1
    noise = torch.randn((8, 3, 4, 4), generator=generator)
    t = torch.tensor([0, 1, 10, 100, 400, 700, 900, 998])
    xt = schedule.q_sample(x0, t, noise)
    v = schedule.v_target(x0, noise, t)
    ab = torch.cumprod(1 - schedule.betas, 0)[t].float().view(-1, 1, 1, 1)
    assert torch.allclose(v, ab.sqrt() * noise - (1 - ab).sqrt() * x0)
    assert torch.allclose(schedule.x0_from_eps(xt, t, noise), x0, atol=1e-3)
    assert torch.allclose(schedule.eps_from_x0(xt, t, x0), noise, atol=1e-3)
    assert torch.allclose(schedule.x0_from_v(xt, t, v), x0, atol=1e-5)
    assert torch.allclose(schedule.eps_from_v(xt, t, v), noise, atol=1e-5)
    for prediction, output in (("eps", noise), ("v", v)):
        assert torch.equal(schedule.target(prediction, x0, noise, t), output)
        x0_hat, eps_hat = schedule.x0_and_eps(prediction, xt, t, output)
        assert torch.allclose(x0_hat, x0, atol=1e-3)
        assert torch.allclose(eps_hat, noise, atol=1e-3)
