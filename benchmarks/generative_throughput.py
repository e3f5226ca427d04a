"""litlab (Lightning) against plain PyTorch for diffusion: U-Net training and sampling images/s.

Training (case ``train``): experiments/generative/mnist_ddpm.yaml's step (the 1.1M-parameter
U-Net, batch 128, noise prediction on the linear schedule of T = 1000, AdamW with warm-up and
cosine LR, gradient clipping at 1.0) on MNIST from $LITLAB_DATA, once as a hand-written PyTorch
loop and once as litlab's DiffusionModel under a Lightning Trainer (logger, checkpoints,
validation and EMA off in both). Same seed, same batches, the same draws of t and noise: the
final training losses must agree to 5 decimals. Timing covers the training loop only
(Lightning: from ``on_train_start`` to ``on_train_end``), Trainer construction excluded.

Sampling (cases ``ddim50``, ``ddim100``, ``ddpm``): the same U-Net (random weights; the speed
does not depend on them) draws a batch of images with DDIM (eta 0, trailing spacing) in 50 or 100
steps or with ancestral DDPM in all 1000, through litlab's ``DiffusionModel.sample_images`` and
through a hand-written loop of the same updates from the same generator. The images (in [0, 1])
must agree to 1e-3, a quarter of an 8-bit grey level (largest difference printed): float32
rounding adds up over DDPM's 1000 steps.

Loops run alternately, the order reversed every other round; printed are the medians over
rounds, litlab's ratio to the plain loop, and the agreement check.

    uv run python benchmarks/generative_throughput.py
    uv run python benchmarks/generative_throughput.py --cases train --steps 100 --rounds 4
    uv run python benchmarks/generative_throughput.py --steps 5 --rounds 1 --sample-batch 4
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lightning_timing import alternate_rounds, fit_timed
from litlab.core.schedulers import WarmupCosineLR
from litlab.generative.models.unet import UNet
from litlab.generative.tasks.diffusion import DiffusionModel
from litlab.vision.data.mnist import MNISTDataModule

SEED = 1234
UNET = {
    "in_channels": 1, "image_size": 28, "base_channels": 32, "channel_mults": (1, 2, 2),
    "num_res_blocks": 1, "attention_resolutions": (7,), "num_heads": 4, "groups": 8,
}  # fmt: skip
T, BATCH, LR, WARMUP, MIN_LR_RATIO, CLIP = 1000, 128, 1e-3, 100, 0.1, 1.0


@dataclass(frozen=True)
class Settings:
    steps: int
    sample_batch: int
    data_dir: str | None


@dataclass(frozen=True)
class Result:
    images_per_s: float
    check: float  # training: the final loss; sampling: the images (compared between loops)
    images: torch.Tensor | None = None


@dataclass(frozen=True)
class Case:
    plain: Callable[[Settings], Result]
    litlab: Callable[[Settings], Result]


def betas() -> torch.Tensor:
    """Ho et al.'s linear schedule, by hand: 1e-4 .. 0.02 over 1000 steps."""
    return torch.linspace(1e-4, 0.02, T, dtype=torch.float64)


def alpha_bar() -> torch.Tensor:
    return torch.cumprod(1 - betas(), 0)


def new_unet() -> UNet:
    torch.manual_seed(SEED)
    return UNet(**UNET)


# ----- training


def mnist(settings: Settings) -> MNISTDataModule:
    return MNISTDataModule(
        data_dir=settings.data_dir,
        batch_size=BATCH,
        in_memory=True,
        pixel_range="symmetric",
        shuffle_seed=SEED,
    )


def train_plain(settings: Settings) -> Result:
    datamodule = mnist(settings)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    model = new_unet()
    params = list(model.parameters())
    # litlab's parameter groups: weight decay (none here) on the matrices only.
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": 0.0},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LR)
    scheduler = WarmupCosineLR(
        optimizer, warmup_steps=WARMUP, total_steps=settings.steps, min_lr_ratio=MIN_LR_RATIO
    )
    clipped = [p for group in optimizer.param_groups for p in group["params"]]
    table = alpha_bar().float()
    model.train()
    images_seen = 0
    start = time.perf_counter()
    for step, (images, _) in enumerate(loader, start=1):
        t = torch.randint(0, T, (images.size(0),))
        noise = torch.randn(images.shape)
        ab = table[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * images + (1 - ab).sqrt() * noise
        loss = F.mse_loss(model(xt, t), noise)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clipped, CLIP)
        optimizer.step()
        scheduler.step()
        images_seen += len(images)
        if step == settings.steps:
            break
    elapsed = time.perf_counter() - start
    return Result(images_seen / elapsed, loss.item())


def train_litlab(settings: Settings) -> Result:
    datamodule = mnist(settings)
    task = DiffusionModel(
        new_unet(),
        num_timesteps=T,
        schedule="linear",
        lr=LR,
        optimizer=torch.optim.AdamW,
        lr_scheduler=partial(WarmupCosineLR, warmup_steps=WARMUP, min_lr_ratio=MIN_LR_RATIO),
        lr_scheduler_interval="step",
        sample_every_n_epochs=0,
    )
    return Result(*fit_timed(task, datamodule, settings.steps, gradient_clip_val=CLIP))


# ----- sampling


def sampling_unet() -> UNet:
    model = new_unet()
    # The output convolution starts at zero; random weights make every step do real work.
    nn.init.normal_(model.output[-1].weight, std=0.02)
    return model.eval()


@torch.no_grad()
def sample_plain(settings: Settings, sampler: str, steps: int) -> Result:
    model = sampling_unet()
    ab = alpha_bar()
    generator = torch.Generator().manual_seed(SEED)
    shape = (settings.sample_batch, 1, 28, 28)
    start = time.perf_counter()
    x = torch.randn(shape, generator=generator)
    if sampler == "ddpm":
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        beta_table = betas()
        for step in reversed(range(T)):
            t = torch.full((len(x),), step)
            a, a_prev, beta = ab[step].item(), ab_prev[step].item(), beta_table[step].item()
            x0 = ((x - math.sqrt(1 - a) * model(x, t)) / math.sqrt(a)).clamp(-1, 1)
            mean = (math.sqrt(a_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - a_prev) * x) / (
                1 - a
            )
            x = mean
            if step > 0:
                sigma = math.sqrt(beta * (1 - a_prev) / (1 - a))
                x = mean + sigma * torch.randn(shape, generator=generator)
    else:
        timesteps = sorted(round(T - k * T / steps) - 1 for k in range(steps))
        for index in reversed(range(steps)):
            step = timesteps[index]
            a = ab[step].item()
            a_prev = ab[timesteps[index - 1]].item() if index > 0 else 1.0
            t = torch.full((len(x),), step)
            x0 = ((x - math.sqrt(1 - a) * model(x, t)) / math.sqrt(a)).clamp(-1, 1)
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
            x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    images = ((x + 1) / 2).clamp(0, 1)
    elapsed = time.perf_counter() - start
    return Result(len(images) / elapsed, 0.0, images)


def sample_litlab(settings: Settings, sampler: str, steps: int) -> Result:
    task = DiffusionModel(
        sampling_unet(),
        num_timesteps=T,
        sampler=sampler,
        sampling_steps=steps,
        timestep_spacing="trailing",
        sample_batch_size=settings.sample_batch,
    )
    generator = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    images = task.sample_images(settings.sample_batch, generator=generator)
    elapsed = time.perf_counter() - start
    return Result(len(images) / elapsed, 0.0, images)


def sampling_case(sampler: str, steps: int) -> Case:
    return Case(
        plain=partial(sample_plain, sampler=sampler, steps=steps),
        litlab=partial(sample_litlab, sampler=sampler, steps=steps),
    )


CASES: dict[str, Case] = {
    "train": Case(plain=train_plain, litlab=train_litlab),
    "ddim50": sampling_case("ddim", 50),
    "ddim100": sampling_case("ddim", 100),
    "ddpm": sampling_case("ddpm", T),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="training steps per loop")
    parser.add_argument("--sample-batch", type=int, default=16, help="images per sampling run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads (default: every core); 1 measures the loops' own costs on a busy "
        "machine.",
    )
    args = parser.parse_args()
    # The table is the output; Lightning's per-fit banner and litlab's data log would bury it.
    for name in ("lightning.pytorch", "litlab"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.15 warns once per process from its own code (as pyproject says).
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    torch.set_num_threads(args.threads)
    settings = Settings(args.steps, args.sample_batch, args.data_dir)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, training batch {BATCH}"
        f" x {args.steps} steps, sampling batch {args.sample_batch}"
    )
    header = (
        f"{'case':8} {'plain img/s':>11} {'litlab img/s':>12} {'litlab/plain':>12}"
        f" {'check (plain, litlab)':>24} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    for name in args.cases:
        case = CASES[name]
        loops = {"plain": case.plain, "litlab": case.litlab}
        results = alternate_rounds(
            {name: partial(loop, settings) for name, loop in loops.items()}, args.rounds
        )
        speed = {
            loop: statistics.median(r.images_per_s for r in runs) for loop, runs in results.items()
        }
        plain, litlab = results["plain"][-1], results["litlab"][-1]
        if plain.images is None:
            check = f"{plain.check:.5f}, {litlab.check:.5f}"
            same = round(plain.check, 5) == round(litlab.check, 5)
        else:
            difference = (plain.images - litlab.images).abs().max().item()
            check = f"max diff {difference:.1e}"
            same = difference < 1e-3
        print(
            f"{name:8} {speed['plain']:11.2f} {speed['litlab']:12.2f}"
            f" {speed['litlab'] / speed['plain']:12.3f} {check:>24} {same!s:>5}"
        )


if __name__ == "__main__":
    main()
