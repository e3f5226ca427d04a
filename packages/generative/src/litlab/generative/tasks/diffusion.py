"""Denoising diffusion (Ho et al. 2020): noise-prediction training, DDPM/DDIM sampling, CFG."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerStatus
from torch import nn

from litlab.core.errors import LitlabError
from litlab.core.hparams import module_args_to_ignore
from litlab.core.lightning_internals import averaged_module
from litlab.core.number_types import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    RightOpenUnitInterval,
)
from litlab.core.seeding import derive_seed, run_seed
from litlab.core.task import Task
from litlab.generative.callbacks.image_grid import log_image_grid
from litlab.generative.callbacks.sample_writer import SampleWriter
from litlab.generative.diffusion.samplers import TimestepSpacing, ddim_sample, ddpm_sample
from litlab.generative.diffusion.schedules import NoiseSchedule, Prediction, ScheduleName

Batch = tuple[torch.Tensor, torch.Tensor]
# Sampling settings stay out of checkpoints: with --ckpt_path, LightningCLI replaces the model's
# config arguments with the checkpoint's, which would undo `litlab predict --model.sampler ddpm`.
SAMPLING_ARGS = (
    "sampler",
    "sampling_steps",
    "eta",
    "timestep_spacing",
    "guidance_scale",
    "num_samples",
    "sample_batch_size",
)
# Streams of the seeds that fix validation and test noise, the grid's noise and predicted samples.
EVALUATION_STREAM, GRID_STREAM, PREDICT_STREAM = 1, 2, 3


class DiffusionModel(Task):
    """Trains ``network`` ``(x_t, t, labels) -> eps or v`` (as
    :class:`~litlab.generative.models.unet.UNet`) to denoise images in [-1, 1], and samples.

    Training draws t uniformly from ``0 .. T-1`` and minimises the MSE to the noise (``eps``,
    Ho et al.) or to the velocity (``v``, Salimans & Ho 2022). A class-conditional model (one
    with ``num_classes``, as UNet has) learns from the batch labels, each replaced by the "no
    class" label with probability ``cond_drop_prob`` so that one network also learns the
    unconditional model classifier-free guidance needs.

    Logs ``train/loss``, ``val/loss`` and ``test/loss`` (the same MSE; validation and test draw
    t and the noise from a fixed seed, so epochs compare). Every ``sample_every_n_epochs``
    epochs a grid of samples goes to ``<run folder>/images/`` and W&B, always from the same
    starting noise.

    Weight EMA is Lightning's ``EMAWeightAveraging`` callback (``trainer.callbacks`` in the
    YAML): it puts the averaged weights in place during validation, and checkpoints hold them
    as their ``state_dict``, so test and predict from a checkpoint use them. :meth:`sample_images`
    uses the averaged weights whenever such a callback keeps them, at any point of a fit.

    ``litlab predict`` ignores the images of the predict loader: it samples ``num_samples``
    images and writes them as PNGs to ``<run folder>/samples/`` and a grid to
    ``<run folder>/grid.png`` (:class:`~litlab.generative.callbacks.sample_writer.SampleWriter`).
    Each chunk of ``sample_batch_size`` images has its own generator seeded from the run's
    ``seed_everything`` and the chunk's position, so one seed gives the same images.
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        network: nn.Module,
        num_timesteps: PositiveInt = 1000,
        schedule: ScheduleName = "linear",
        prediction: Prediction = "eps",
        cond_drop_prob: RightOpenUnitInterval = 0.1,
        lr: PositiveFloat = 2e-4,
        lr_scheduler_interval: Literal["epoch", "step"] = "step",
        sampler: Literal["ddpm", "ddim"] = "ddim",
        sampling_steps: PositiveInt = 100,
        eta: NonNegativeFloat = 0.0,
        timestep_spacing: TimestepSpacing = "trailing",
        guidance_scale: NonNegativeFloat = 1.0,
        num_samples: PositiveInt = 64,
        sample_batch_size: PositiveInt = 64,
        sample_every_n_epochs: NonNegativeInt = 1,
        grid_images: PositiveInt = 64,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The network (a ``class_path`` in YAML): ``(x_t, t, labels)`` to an output of
            x_t's shape, with attributes ``in_channels`` and ``image_size``, and
            ``num_classes`` (None: unconditional) if it takes labels.
        num_timesteps: Diffusion steps T of training (1000 in Ho et al.).
        schedule: Noise schedule: ``linear`` (Ho et al.) or ``cosine`` (Nichol & Dhariwal).
        prediction: Training target: the noise ``eps`` or the velocity ``v``.
        cond_drop_prob: Conditional models: probability that a training label becomes "no
            class" (classifier-free guidance; 0.1-0.2 is usual). Ignored without classes.
        lr: Peak learning rate.
        lr_scheduler_interval: Step the scheduler every ``"step"`` or every ``"epoch"``.
        sampler: ``ddpm`` (ancestral, all T steps) or ``ddim``.
        sampling_steps: DDIM steps (network evaluations per image); DDPM always takes T.
        eta: DDIM noise: 0 deterministic, 1 DDPM-like.
        timestep_spacing: Timesteps DDIM visits: ``trailing``, ``uniform`` or ``linspace``.
        guidance_scale: Classifier-free guidance weight for conditional models (1: the
            conditional model alone, 0: the unconditional one, > 1: stronger class features).
        num_samples: Images ``litlab predict`` writes.
        sample_batch_size: Images sampled together (memory: one batch through the network,
            twice with guidance).
        sample_every_n_epochs: Log a grid of samples every this many epochs (0: never).
        grid_images: Images in that grid (conditional models: the classes in turn).
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(lr=lr, lr_scheduler_interval=lr_scheduler_interval, **kwargs)
        problems = [
            f"{name} must be >= {low}, got {value}"
            for name, value, low in (
                ("sampling_steps", sampling_steps, 1),
                ("num_samples", num_samples, 1),
                ("sample_batch_size", sample_batch_size, 1),
                ("sample_every_n_epochs", sample_every_n_epochs, 0),
                ("grid_images", grid_images, 1),
                ("eta", eta, 0),
                ("guidance_scale", guidance_scale, 0),
            )
            if value < low
        ]
        if not 0 <= cond_drop_prob < 1:
            problems.append(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}")
        if sampler == "ddim" and sampling_steps > num_timesteps:
            problems.append(
                f"sampling_steps={sampling_steps} exceeds num_timesteps={num_timesteps}"
            )
        missing = [a for a in ("in_channels", "image_size") if not hasattr(network, a)]
        if missing:
            problems.append(
                f"{type(network).__name__} has no {' or '.join(missing)}: DiffusionModel needs "
                "them to know the image shape, as litlab.generative.models.unet.UNet has"
            )
        if problems:
            raise LitlabError(
                f"DiffusionModel: {'; '.join(problems)}. Set them under model.init_args "
                "(e.g. --model.sampling_steps 50)."
            )
        self.save_hyperparameters(
            logger=False, ignore=[*module_args_to_ignore("network"), *SAMPLING_ARGS]
        )
        self.network = network
        self.schedule = NoiseSchedule.named(schedule, num_timesteps)
        self.prediction = prediction
        self.num_classes: int | None = getattr(network, "num_classes", None)
        self.cond_drop_prob = cond_drop_prob
        self.sampler = sampler
        self.sampling_steps = sampling_steps
        self.eta = eta
        self.timestep_spacing = timestep_spacing
        self.guidance_scale = guidance_scale
        self.num_samples = num_samples
        self.sample_batch_size = sample_batch_size
        self.sample_every_n_epochs = sample_every_n_epochs
        self.grid_images = grid_images
        self._average_fingerprint: torch.Tensor | None = None
        self._chunks_per_batch = 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.network.in_channels, self.network.image_size, self.network.image_size)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.num_classes is None:
            return self.network(xt, t)
        return self.network(xt, t, labels)

    def configure_callbacks(self) -> list[Callback]:
        nrow = self.num_classes or 8
        return [SampleWriter(grid_size=nrow * 8, nrow=nrow)]

    def setup(self, stage: str) -> None:
        pixel_range = self.data_facts.pixel_range or "symmetric"
        if pixel_range != "symmetric":
            raise LitlabError(
                f"DiffusionModel needs images in [-1, 1] but the data gives pixel_range="
                f"{pixel_range!r}; set data.init_args.pixel_range: symmetric"
            )
        if stage == "predict":
            # One predict batch per chunk of samples on each rank: the loader's images are not
            # used, and the rest of the test set need not be read.
            chunks = math.ceil(self._num_chunks() / self.trainer.world_size)
            limit = self.trainer.limit_predict_batches
            if isinstance(limit, float) or limit > chunks:
                self.trainer.limit_predict_batches = chunks

    # ----- training and validation

    def _loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        images, labels = batch
        size, device = (images.size(0),), images.device
        t = torch.randint(0, self.schedule.num_timesteps, size, device=device, generator=generator)
        noise = torch.randn(images.shape, device=device, generator=generator)
        xt = self.schedule.q_sample(images, t, noise)
        conditioning = None
        if self.num_classes is not None:
            conditioning = labels
            if self.training and self.cond_drop_prob > 0:
                drop = torch.rand(labels.shape, device=labels.device) < self.cond_drop_prob
                conditioning = labels.masked_fill(drop, self.num_classes)
        output = self(xt, t, conditioning)
        return F.mse_loss(output, self.schedule.target(self.prediction, images, noise, t))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _fixed_noise_loss(self, batch: Batch, batch_idx: int, stage: str) -> torch.Tensor:
        # The same timesteps and noise for a batch every epoch: epochs compare, not luck.
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(EVALUATION_STREAM, batch_idx))
        loss = self._loss(batch, generator)
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._fixed_noise_loss(batch, batch_idx, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._fixed_noise_loss(batch, batch_idx, "test")

    def on_validation_epoch_start(self) -> None:
        # Lightning's weight averaging has just moved the averaged weights into this module
        # (callbacks run before the module's hook): remember what they look like.
        if self._average_model() is not None:
            self._average_fingerprint = self._fingerprint()

    def on_validation_epoch_end(self) -> None:
        every = self.sample_every_n_epochs
        if self.trainer.sanity_checking or not every or (self.current_epoch + 1) % every:
            return
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(run_seed(), GRID_STREAM))
        images = self.sample_images(self.grid_images, generator=generator)
        nrow = self.num_classes or math.ceil(math.sqrt(self.grid_images))
        log_image_grid(self.trainer, "val/samples", images, nrow=nrow)

    # ----- sampling

    def _average_model(self) -> nn.Module | None:
        """The averaged copy of this module that a weight-averaging callback keeps while the
        trainer runs (once a fit has ended, Lightning has copied the average into this module)."""
        trainer = self.attached_trainer
        if trainer is None or trainer.state.status != TrainerStatus.RUNNING:
            return None
        for callback in trainer.callbacks:
            # Lightning has no public accessor for the averaged model.
            if (
                isinstance(callback, WeightAveraging)
                and (average := averaged_module(callback)) is not None
            ):
                return average
        return None

    def _fingerprint(self) -> torch.Tensor:
        return torch.stack([p.detach().double().sum() for p in self.network.parameters()]).cpu()

    def sampling_network(self) -> nn.Module:
        """The network samples come from: the averaged (EMA) weights when a weight-averaging
        callback keeps them apart, else the module's own.

        During a fit the callback swaps the two sets in and out of this module around each
        validation epoch; whichever set matches the averaged weights seen at the start of the
        last validation epoch is the average (the live weights have moved on since). After the
        fit this module holds the average; a checkpoint holds it as its ``state_dict``.
        """
        average = self._average_model()
        if average is None:
            return self.network
        if self._average_fingerprint is not None and torch.equal(
            self._fingerprint(), self._average_fingerprint
        ):
            return self.network
        return average.network

    @torch.no_grad()
    def sample_images(
        self,
        num_images: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``num_images`` samples (N, C, H, W) in [0, 1] on this module's device, drawn with the
        configured sampler in chunks of ``sample_batch_size``, from the EMA weights when there
        are any (see :meth:`sampling_network`).

        Args:
            num_images: How many images.
            labels: (N,) classes of a conditional model; default the classes in turn
                (0, 1, ..., 0, 1, ...), so every class gets an equal share.
            generator: Source of the noise (on this module's device); default the global RNG.
        """
        if labels is None and self.num_classes is not None:
            labels = torch.arange(num_images, device=self.device) % self.num_classes
        network = self.sampling_network()
        chunks = [
            self._sample_chunk(
                network,
                min(self.sample_batch_size, num_images - start),
                None if labels is None else labels[start : start + self.sample_batch_size],
                generator,
            )
            for start in range(0, num_images, self.sample_batch_size)
        ]
        return torch.cat(chunks).to(self.device)

    def _sample_chunk(
        self,
        network: nn.Module,
        size: int,
        labels: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        device = next(network.parameters()).device
        labels = labels.to(device) if labels is not None else None

        def model_fn(xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            return network(xt, t) if self.num_classes is None else network(xt, t, y)

        common = {
            "shape": (size, *self.image_shape),
            "generator": generator,
            "labels": labels,
            "prediction": self.prediction,
            "guidance_scale": self.guidance_scale,
            "null_label": self.num_classes,
            "device": device,
        }
        with _eval_mode(network):
            if self.sampler == "ddpm":
                images = ddpm_sample(model_fn, self.schedule, **common)
            else:
                images = ddim_sample(
                    model_fn,
                    self.schedule,
                    num_steps=self.sampling_steps,
                    eta=self.eta,
                    spacing=self.timestep_spacing,
                    **common,
                )
        return ((images + 1) / 2).clamp(0, 1)

    # ----- litlab predict

    def _num_chunks(self) -> int:
        return math.ceil(self.num_samples / self.sample_batch_size)

    def on_predict_start(self) -> None:
        chunks = math.ceil(self._num_chunks() / self.trainer.world_size)
        batches = self.trainer.num_predict_batches[0]
        # A predict loader shorter than the chunks (a small predict_dir) takes several each.
        self._chunks_per_batch = math.ceil(chunks / batches)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """Samples the chunks that fall to this batch (its images are not used) and returns
        ``images`` (uint8 (B, C, H, W), on the CPU) and their sample numbers ``index`` (B,)."""
        images = [torch.empty(0, *self.image_shape, dtype=torch.uint8)]
        indices = [torch.empty(0, dtype=torch.long)]
        chunks = predict_chunks(
            batch_idx,
            self._chunks_per_batch,
            self.trainer.global_rank,
            self.trainer.world_size,
            self._num_chunks(),
        )
        for chunk in chunks:
            start = chunk * self.sample_batch_size
            stop = min(start + self.sample_batch_size, self.num_samples)
            index = torch.arange(start, stop)
            generator = torch.Generator(device=self.device)
            generator.manual_seed(derive_seed(run_seed(), PREDICT_STREAM, chunk))
            labels = index.to(self.device) % self.num_classes if self.num_classes else None
            samples = self.sample_images(len(index), labels, generator)
            images.append((samples * 255).round().to(torch.uint8).cpu())
            indices.append(index)
        return {"images": torch.cat(images), "index": torch.cat(indices)}


def predict_chunks(
    batch_idx: int, chunks_per_batch: int, rank: int, world_size: int, num_chunks: int
) -> list[int]:
    """The sample chunks a rank's predict batch draws: ranks take every ``world_size``-th chunk,
    so under DDP each chunk (and its seed) is sampled once, by one rank."""
    first = batch_idx * chunks_per_batch
    local = range(first, first + chunks_per_batch)
    return [c * world_size + rank for c in local if c * world_size + rank < num_chunks]


@contextmanager
def _eval_mode(network: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (the averaged copy keeps whatever mode it was made in)."""
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)
