"""DDPM and DDIM sampling: timestep spacings, determinism, DDIM with every step and eta = 1 being
DDPM, oracle models landing on their x_0, and classifier-free guidance at its end points."""

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.generative.diffusion.samplers import (
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    guided_output,
)
from litlab.generative.diffusion.schedules import NoiseSchedule

SHAPE = (3, 1, 4, 4)


def toy_model(xt, t, labels):
    """A fixed nonlinear function of x_t, t and the labels (None: "no class")."""
    shift = 0.0 if labels is None else 0.3 * labels.view(-1, 1, 1, 1).float()
    return 0.5 * torch.tanh(xt + shift) + 0.001 * t.view(-1, 1, 1, 1).float()


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("spacing", ["uniform", "linspace", "trailing"])
def test_every_spacing_with_all_steps_visits_every_timestep(spacing):
    assert ddim_timesteps(50, 50, spacing) == list(range(50))


def test_timestep_spacings():
    assert ddim_timesteps(1000, 10, "uniform") == list(range(0, 1000, 100))
    assert ddim_timesteps(1000, 10, "trailing") == list(range(99, 1000, 100))
    linspace = ddim_timesteps(1000, 10, "linspace")
    assert (linspace[0], linspace[-1], len(linspace)) == (0, 999, 10)
    with pytest.raises(LitlabError, match="between 1 and num_timesteps=1000"):
        ddim_timesteps(1000, 1001)
    with pytest.raises(LitlabError, match="timestep spacing"):
        ddim_timesteps(1000, 10, "quadratic")


def test_ddim_with_eta_zero_is_deterministic():
    schedule = NoiseSchedule.named("linear", 100)
    first = ddim_sample(toy_model, schedule, SHAPE, num_steps=10, generator=generator(0))
    again = ddim_sample(toy_model, schedule, SHAPE, num_steps=10, generator=generator(0))
    other = ddim_sample(toy_model, schedule, SHAPE, num_steps=10, generator=generator(1))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_with_every_step_and_eta_one_is_ddpm(prediction):
    schedule = NoiseSchedule.named("cosine", 40)
    ddpm = ddpm_sample(toy_model, schedule, SHAPE, generator(3), prediction=prediction)
    ddim = ddim_sample(
        toy_model, schedule, SHAPE, num_steps=40, eta=1.0, generator=generator(3),
        prediction=prediction,
    )  # fmt: skip
    assert torch.allclose(ddim, ddpm, atol=1e-4)
    # Its per-step noise is DDPM's posterior variance (beta tilde).
    ab = schedule.alpha_bar
    ab_prev = schedule.alpha_bar_prev
    ddim_variance = (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
    assert torch.allclose(ddim_variance, schedule.posterior_variance)


def test_ddim_with_fewer_steps_and_eta_one_stays_random():
    schedule = NoiseSchedule.named("cosine", 40)
    a = ddim_sample(toy_model, schedule, SHAPE, num_steps=8, eta=1.0, generator=generator(0))
    b = ddim_sample(toy_model, schedule, SHAPE, num_steps=8, eta=0.0, generator=generator(0))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_an_oracle_model_yields_its_x0(sampler, prediction):
    """A model that always points at one image (its eps or v computed from that image) must
    produce exactly that image, whichever sampler and steps."""
    schedule = NoiseSchedule.named("linear", 100)
    target = torch.linspace(-0.9, 0.9, 16).view(1, 1, 4, 4).expand(SHAPE)

    def oracle(xt, t, labels):
        eps = schedule.eps_from_x0(xt, t, target)
        return eps if prediction == "eps" else schedule.v_target(target, eps, t)

    if sampler == "ddpm":
        images = ddpm_sample(oracle, schedule, SHAPE, generator(0), prediction=prediction)
    else:
        images = ddim_sample(
            oracle, schedule, SHAPE, num_steps=7, eta=0.5, generator=generator(0),
            prediction=prediction,
        )  # fmt: skip
    assert torch.allclose(images, target, atol=1e-4)


def test_guidance_scale_zero_and_one_are_the_unconditional_and_conditional_models():
    xt = torch.randn(SHAPE, generator=generator(0))
    t = torch.tensor([5, 50, 95])
    labels = torch.tensor([0, 1, 2])
    conditional = toy_model(xt, t, labels)
    unconditional = toy_model(xt, t, None)
    assert torch.equal(guided_output(toy_model, xt, t, labels, 1.0), conditional)
    assert torch.equal(guided_output(toy_model, xt, t, labels, 0.0), unconditional)
    assert torch.allclose(
        guided_output(toy_model, xt, t, labels, 3.0),
        unconditional + 3.0 * (conditional - unconditional),
    )
    assert torch.equal(guided_output(toy_model, xt, t, None, 3.0), unconditional)
    # With the "no class" label (here 0 shifts nothing, as None does) both halves are one call.
    calls = []

    def counted(xt, t, labels):
        calls.append(len(xt))
        return toy_model(xt, t, labels)

    batched = guided_output(counted, xt, t, labels, 3.0, null_label=0)
    assert calls == [6]
    assert torch.allclose(batched, guided_output(toy_model, xt, t, labels, 3.0))

    schedule = NoiseSchedule.named("linear", 100)

    def sample(labels, scale):
        return ddim_sample(
            toy_model, schedule, SHAPE, num_steps=5, generator=generator(7), labels=labels,
            guidance_scale=scale,
        )  # fmt: skip

    assert torch.equal(sample(labels, 0.0), sample(None, 1.0))
    assert not torch.allclose(sample(labels, 1.0), sample(None, 1.0))
    assert not torch.allclose(sample(labels, 2.0), sample(labels, 1.0))


def test_negative_eta_is_refused():
    with pytest.raises(LitlabError, match="eta"):
        ddim_sample(toy_model, NoiseSchedule.named("linear", 100), SHAPE, eta=-0.1)
