"""Sampling from a trained diffusion model: ancestral DDPM and DDIM, with classifier-free
guidance.

A model function maps ``(x_t (B, C, H, W), t (B,) int64, labels (B,) or None)`` to the network's
output (noise ``eps`` or velocity ``v``); ``labels=None`` asks for the unconditional output.
Every random draw comes from the ``generator`` given, in a fixed order, so a seed fixes the
images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch

from litlab.core.errors import LitlabError
from litlab.generative.diffusion.schedules import NoiseSchedule, Prediction

ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
TimestepSpacing = Literal["uniform", "linspace", "trailing"]


def guided_output(
    model_fn: ModelFn,
    xt: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor | None,
    guidance_scale: float = 1.0,
    null_label: int | None = None,
) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ``uncond + w * (cond - uncond)``.

    ``w = 1`` is the conditional model alone and ``w = 0`` the unconditional one; either takes a
    single network call. Without labels the model is unconditional and ``w`` does not apply.
    Given the model's "no class" label ``null_label``, both halves go through the network as one
    batch of 2B (one call instead of two); without it, the unconditional call gets ``None``.
    """
    if labels is None or guidance_scale == 1.0:
        return model_fn(xt, t, labels)
    if guidance_scale == 0.0:
        return model_fn(xt, t, None)
    if null_label is None:
        conditional = model_fn(xt, t, labels)
        unconditional = model_fn(xt, t, None)
    else:
        both = torch.cat([labels, torch.full_like(labels, null_label)])
        conditional, unconditional = model_fn(torch.cat([xt, xt]), torch.cat([t, t]), both).chunk(2)
    return unconditional + guidance_scale * (conditional - unconditional)


def _denoise(
    model_fn: ModelFn,
    schedule: NoiseSchedule,
    xt: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor | None,
    prediction: Prediction,
    guidance_scale: float,
    null_label: int | None,
    clip_range: tuple[float, float] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's x_0 (clipped to the data range) and the noise consistent with it."""
    output = guided_output(model_fn, xt, t, labels, guidance_scale, null_label)
    x0, eps = schedule.x0_and_eps(prediction, xt, t, output)
    if clip_range is not None:
        x0 = x0.clamp(*clip_range)
        # After clipping, the noise must be re-derived so the update stays on the x_0 it uses.
        eps = schedule.eps_from_x0(xt, t, x0)
    return x0, eps


@torch.no_grad()
def ddpm_sample(
    model_fn: ModelFn,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
    prediction: Prediction = "eps",
    guidance_scale: float = 1.0,
    null_label: int | None = None,
    clip_range: tuple[float, float] | None = (-1.0, 1.0),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) through all T steps.

    Each step draws x_{t-1} from q(x_{t-1} | x_t, x_0 = the model's x_0), whose variance is the
    posterior's ``beta_tilde`` ("fixed small"); the last step adds no noise.

    Args:
        model_fn: The network, as in the module docstring.
        schedule: The schedule the model was trained with.
        shape: (B, C, H, W) of the images.
        generator: Source of every random draw (on ``device``).
        labels: (B,) class labels of a conditional model, or None.
        prediction: What the model outputs: ``"eps"`` or ``"v"``.
        guidance_scale: Classifier-free guidance weight (1: no guidance).
        null_label: The model's "no class" label: guidance then takes one network call per
            step, on a double batch (see :func:`guided_output`).
        clip_range: Range x_0 is clipped to at each step (the data's), or None.
        device: Where to sample; default the generator's device.
    """
    device = device if device is not None else (generator.device if generator else None)
    x = torch.randn(tuple(shape), generator=generator, device=device)
    for step in reversed(range(schedule.num_timesteps)):
        t = torch.full((x.size(0),), step, dtype=torch.long, device=x.device)
        x0, _ = _denoise(
            model_fn, schedule, x, t, labels, prediction, guidance_scale, null_label, clip_range
        )
        mean = schedule.posterior_mean(x0, x, t)
        if step == 0:
            x = mean
        else:
            noise = torch.randn(x.shape, generator=generator, device=x.device)
            x = mean + schedule.at("posterior_variance", t, x).sqrt() * noise
    return x


def ddim_timesteps(
    num_timesteps: int, num_steps: int, spacing: TimestepSpacing = "trailing"
) -> list[int]:
    """The training timesteps a DDIM run visits, in increasing order.

    ``uniform`` is Song et al.'s ``0, c, 2c, ...`` with ``c = T // num_steps``; ``linspace`` spreads
    ``num_steps`` points evenly over ``[0, T-1]``; ``trailing`` counts back from ``T-1`` in steps
    of ``T / num_steps`` (Lin et al. 2024), so sampling starts at the noisiest timestep the
    model was trained on. All three give every timestep when ``num_steps = T``.
    """
    if not 1 <= num_steps <= num_timesteps:
        raise LitlabError(
            f"the number of sampling steps must be between 1 and num_timesteps={num_timesteps}, "
            f"got {num_steps}"
        )
    if spacing == "uniform":
        steps = range(0, num_steps * (num_timesteps // num_steps), num_timesteps // num_steps)
    elif spacing == "linspace":
        steps = torch.linspace(0, num_timesteps - 1, num_steps).round().long().tolist()
    elif spacing == "trailing":
        stride = num_timesteps / num_steps
        steps = [round(num_timesteps - k * stride) - 1 for k in range(num_steps)]
    else:
        raise LitlabError(
            f"timestep spacing must be 'uniform', 'linspace' or 'trailing', got {spacing!r}"
        )
    return sorted(set(steps))


@torch.no_grad()
def ddim_sample(
    model_fn: ModelFn,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 50,
    eta: float = 0.0,
    spacing: TimestepSpacing = "trailing",
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
    prediction: Prediction = "eps",
    guidance_scale: float = 1.0,
    null_label: int | None = None,
    clip_range: tuple[float, float] | None = (-1.0, 1.0),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) over a subsequence of the training timesteps.

    ``x_prev = sqrt(ab_prev) x_0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z`` with
    ``sigma = eta * sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))``. ``eta = 0`` is
    deterministic given the starting noise; ``eta = 1`` with all T steps is ancestral DDPM
    (same mean and variance at every step, and the same random draws as :func:`ddpm_sample`).

    Args:
        model_fn: The network, as in the module docstring.
        schedule: The schedule the model was trained with.
        shape: (B, C, H, W) of the images.
        num_steps: Network evaluations (timesteps visited), at most T.
        eta: Noise scale between deterministic DDIM (0) and DDPM-like sampling (1).
        spacing: Which timesteps to visit: see :func:`ddim_timesteps`.
        generator: Source of every random draw (on ``device``).
        labels: (B,) class labels of a conditional model, or None.
        prediction: What the model outputs: ``"eps"`` or ``"v"``.
        guidance_scale: Classifier-free guidance weight (1: no guidance).
        null_label: The model's "no class" label: guidance then takes one network call per
            step, on a double batch (see :func:`guided_output`).
        clip_range: Range x_0 is clipped to at each step (the data's), or None.
        device: Where to sample; default the generator's device.
    """
    if eta < 0:
        raise LitlabError(f"eta must be >= 0, got {eta}")
    timesteps = ddim_timesteps(schedule.num_timesteps, num_steps, spacing)
    device = device if device is not None else (generator.device if generator else None)
    x = torch.randn(tuple(shape), generator=generator, device=device)
    # Python floats in float64: the per-step coefficients need no device tensors.
    alpha_bar = schedule.alpha_bar.tolist()
    for index in reversed(range(len(timesteps))):
        step = timesteps[index]
        t = torch.full((x.size(0),), step, dtype=torch.long, device=x.device)
        x0, eps = _denoise(
            model_fn, schedule, x, t, labels, prediction, guidance_scale, null_label, clip_range
        )
        ab = alpha_bar[step]
        ab_prev = alpha_bar[timesteps[index - 1]] if index > 0 else 1.0
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        direction = math.sqrt(max(1 - ab_prev - sigma**2, 0.0))
        x = math.sqrt(ab_prev) * x0 + direction * eps
        if index > 0 and eta > 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device)
            x = x + sigma * noise
    return x
