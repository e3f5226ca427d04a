"""Noise schedules of Gaussian diffusion and the closed forms built on them.

Timesteps are 0-based: ``t = 0 .. T-1``, and ``alpha_bar[t] = prod_{s <= t} (1 - beta_s)`` is the
signal kept after step ``t``, so ``q(x_t | x_0) = N(sqrt(alpha_bar[t]) x_0, (1 - alpha_bar[t]) I)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from litlab.core.errors import LitlabError

ScheduleName = Literal["linear", "cosine"]
Prediction = Literal["eps", "v"]


def linear_betas(
    num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """Ho et al. (2020): betas evenly spaced from ``beta_start`` to ``beta_end`` for T = 1000.

    Other T scale both ends by ``1000 / T`` (as Nichol & Dhariwal's code does), so the total
    noise stays about the same and any T ends near pure noise.
    """
    scale = 1000 / num_timesteps
    if beta_end * scale >= 1:
        raise LitlabError(
            f"the linear schedule with num_timesteps={num_timesteps} would need betas up to "
            f"{beta_end * scale:.3g} (>= 1); use more timesteps or the cosine schedule"
        )
    return torch.linspace(beta_start * scale, beta_end * scale, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021): ``alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2)``, betas from
    its ratios, clipped at ``max_beta`` (the last steps would otherwise reach 1)."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    alpha_bar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def _broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, ...) in ``like``'s dtype, to scale a batch of images."""
    return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule:
    """betas, alphas and alpha_bar of one schedule, the forward process q(x_t | x_0), and the
    conversions between the model's targets (noise ``eps``, velocity ``v``) and ``x_0``.

    A plain object, not an ``nn.Module``: the values are a function of the config, so they stay
    out of checkpoints and out of Lightning's weight averaging (which averages every buffer).
    Tensors are computed in float64 on the CPU and copied once to each device asked for.

    Args:
        betas: (T,) noise variances of the steps, each in (0, 1).
    """

    def __init__(self, betas: torch.Tensor) -> None:
        if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
            raise LitlabError("betas must be a 1-d tensor with every value in (0, 1)")
        self.betas = betas.double()
        self.alphas = 1 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        # Variance of q(x_{t-1} | x_t, x_0): 0 at t = 0, where x_0 is reached.
        self.posterior_variance = self.betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)
        self._tables: dict[torch.device, dict[str, torch.Tensor]] = {}

    @classmethod
    def named(cls, name: ScheduleName, num_timesteps: int) -> NoiseSchedule:
        """The ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal) schedule of T steps."""
        if num_timesteps < 1:
            raise LitlabError(f"num_timesteps must be >= 1, got {num_timesteps}")
        if name == "linear":
            return cls(linear_betas(num_timesteps))
        if name == "cosine":
            return cls(cosine_betas(num_timesteps))
        raise LitlabError(f"schedule must be 'linear' or 'cosine', got {name!r}")

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    def at(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The table ``name`` (``betas``, ``alpha_bar``, ...) at timesteps ``t`` (B,), shaped to
        scale ``like`` (B, C, H, W)."""
        tables = self._tables.get(t.device)
        if tables is None:
            names = ("betas", "alphas", "alpha_bar", "alpha_bar_prev", "posterior_variance")
            # float32 on the device: MPS has no float64, and images are float32 anyway.
            tables = {n: getattr(self, n).float().to(t.device) for n in names}
            self._tables[t.device] = tables
        return _broadcast(tables[name][t], like)

    # ----- the forward process

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw of x_t ~ q(x_t | x_0) given the standard normal ``noise``."""
        alpha_bar = self.at("alpha_bar", t, x0)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def q_mean_variance(
        self, x0: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and per-pixel variance of q(x_t | x_0)."""
        alpha_bar = self.at("alpha_bar", t, x0)
        return alpha_bar.sqrt() * x0, (1 - alpha_bar).expand_as(x0)

    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x_0) (Ho et al., Eq. 7)."""
        beta = self.at("betas", t, xt)
        alpha = self.at("alphas", t, xt)
        alpha_bar = self.at("alpha_bar", t, xt)
        alpha_bar_prev = self.at("alpha_bar_prev", t, xt)
        return (
            alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * xt
        )

    # ----- targets and conversions

    def v_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The velocity ``v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0`` (Salimans & Ho)."""
        alpha_bar = self.at("alpha_bar", t, x0)
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0

    def x0_from_eps(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.at("alpha_bar", t, xt)
        return (xt - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.at("alpha_bar", t, xt)
        return (xt - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()

    def x0_from_v(self, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.at("alpha_bar", t, xt)
        return alpha_bar.sqrt() * xt - (1 - alpha_bar).sqrt() * v

    def eps_from_v(self, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        alpha_bar = self.at("alpha_bar", t, xt)
        return (1 - alpha_bar).sqrt() * xt + alpha_bar.sqrt() * v

    def target(
        self, prediction: Prediction, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """What a model trained for ``prediction`` should output for ``q_sample(x0, t, noise)``."""
        return noise if prediction == "eps" else self.v_target(x0, noise, t)

    def x0_and_eps(
        self, prediction: Prediction, xt: torch.Tensor, t: torch.Tensor, output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The x_0 and noise that a model output for ``prediction`` stands for."""
        if prediction == "eps":
            return self.x0_from_eps(xt, t, output), output
        return self.x0_from_v(xt, t, output), self.eps_from_v(xt, t, output)
