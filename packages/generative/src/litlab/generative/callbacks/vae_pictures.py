"""Pictures of what a VAE has learned: reconstructions, prior samples, an interpolation and,
for a 2-d latent, the latent map, as PNG grids in the run folder and in W&B."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt
from litlab.generative.callbacks.image_grid import log_image_grid

PAIRS_PER_ROW = 8


class VAEPictures(Callback):
    """Logs four grids through :func:`~litlab.generative.callbacks.image_grid.log_image_grid`
    at the end of validation every ``every_n_epochs`` epochs (keys ``val/...``) and at the end
    of testing (``test/...``):

    - ``reconstructions``: each input (as the model sees it, e.g. binarised) next to its
      reconstruction from the posterior mean;
    - ``samples``: images decoded from prior draws, the same draws every time, so successive
      grids show the decoder's progress;
    - ``interpolation``: the first two inputs at the ends of a row of images decoded along the
      straight line between their posterior means;
    - ``latent_map`` (2-d latent only): images decoded over a grid of the latent plane at
      evenly spaced Gaussian quantiles, as in Kingma & Welling (2014), Fig. 4.

    The inputs are the first batch of the stage. The module is a
    :class:`~litlab.generative.tasks.vae.VAETask` (``prepare_images``, ``reconstruct``,
    ``sample_images``, ``decode_images`` and ``model.encode``/``model.latent_dim``).
    """

    def __init__(
        self,
        every_n_epochs: PositiveInt = 5,
        num_reconstructions: PositiveInt = 32,
        num_samples: PositiveInt = 64,
        interpolation_steps: PositiveInt = 10,
        latent_map_size: PositiveInt = 20,
        seed: int = 0,
    ) -> None:
        """Args:
        every_n_epochs: Log at the end of every this many epochs' validation.
        num_reconstructions: Inputs shown with their reconstructions (at most a batch).
        num_samples: Images decoded from the prior.
        interpolation_steps: Decoded images between (and including) the two endpoints' codes.
        latent_map_size: Images per side of the latent map.
        seed: Seed of the prior draws.
        """
        if every_n_epochs < 1:
            raise LitlabError(f"every_n_epochs must be at least 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.num_reconstructions = num_reconstructions
        self.num_samples = num_samples
        self.interpolation_steps = interpolation_steps
        self.latent_map_size = latent_map_size
        self.seed = seed
        self._inputs: torch.Tensor | None = None

    def _keep_first_batch(
        self, pl_module: LightningModule, batch: Any, batch_idx: int, stage: str
    ) -> None:
        if batch_idx != 0:
            return
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        kept = max(self.num_reconstructions, 2)
        # Prepared as in the step (same batch index), so evaluation shows its fixed draw.
        prepared = pl_module.prepare_images(images, stage, batch_idx)[:kept]
        self._inputs = prepared.detach().float().cpu()

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx == 0:
            self._keep_first_batch(pl_module, batch, batch_idx, "val")

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx == 0:
            self._keep_first_batch(pl_module, batch, batch_idx, "test")

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.log_pictures(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.log_pictures(trainer, pl_module, "test")

    @torch.no_grad()
    def log_pictures(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Writes the grids of ``stage`` from the kept inputs and the module's current weights."""
        if self._inputs is not None:
            inputs = self._inputs[: self.num_reconstructions]
            pairs = torch.stack([inputs, pl_module.reconstruct(inputs).cpu()], dim=1)
            log_image_grid(
                trainer,
                f"{stage}/reconstructions",
                pairs.flatten(0, 1),
                nrow=2 * min(PAIRS_PER_ROW, len(inputs)),
            )
            if len(self._inputs) >= 2:
                self._log_interpolation(trainer, pl_module, stage, self._inputs[:2])
        generator = torch.Generator().manual_seed(self.seed)
        samples = pl_module.sample_images(self.num_samples, generator=generator).cpu()
        log_image_grid(trainer, f"{stage}/samples", samples, nrow=PAIRS_PER_ROW)
        if pl_module.network.latent_dim == 2:
            log_image_grid(
                trainer,
                f"{stage}/latent_map",
                pl_module.decode_images(latent_grid(self.latent_map_size)).cpu(),
                nrow=self.latent_map_size,
            )

    def _log_interpolation(
        self, trainer: Trainer, pl_module: LightningModule, stage: str, ends: torch.Tensor
    ) -> None:
        mean, _ = pl_module.network.encode(ends.to(pl_module.device, pl_module.dtype))
        weights = torch.linspace(0, 1, self.interpolation_steps, device=mean.device)[:, None]
        codes = (1 - weights) * mean[0] + weights * mean[1]
        decoded = pl_module.decode_images(codes).cpu()
        row = torch.cat([ends[:1], decoded, ends[1:]])
        log_image_grid(trainer, f"{stage}/interpolation", row, nrow=len(row))


def latent_grid(size: int) -> torch.Tensor:
    """(size * size, 2) latent codes at the N(0, 1) quantiles of ``size`` evenly spaced
    probabilities in each axis, row by row from the top (second coordinate decreasing)."""
    probabilities = torch.linspace(0.05, 0.95, size)
    quantiles = torch.distributions.Normal(0.0, 1.0).icdf(probabilities)
    rows, cols = torch.meshgrid(quantiles.flip(0), quantiles, indexing="ij")
    return torch.stack([cols, rows], dim=-1).reshape(-1, 2)
