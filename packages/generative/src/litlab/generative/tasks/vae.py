"""Variational autoencoders (Kingma & Welling, 2014): the ELBO with a Bernoulli or Gaussian
decoder, beta and KL warm-up, and the importance-weighted test NLL (Burda et al., 2016)."""

from __future__ import annotations

import hashlib
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from torch import nn

from litlab.core.errors import LitlabError
from litlab.core.hparams import module_args_to_ignore
from litlab.core.number_types import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from litlab.core.task import Task
from litlab.generative.callbacks.vae_pictures import VAEPictures
from litlab.generative.models.vae import VAE

LOG_2PI = math.log(2 * math.pi)
PIXEL_LEVELS = 256  # 8-bit images: [0, 1] pixels are k / 255
SAMPLE_CHUNK = 1024  # latents decoded at once by sample_images
# Evaluation settings stay out of the checkpoint: with --ckpt_path, LightningCLI replaces the
# config's model arguments with the checkpoint's, which would undo `--model.iwae_samples 5000`.
EVALUATION_ARGS = ("iwae_samples", "iwae_chunk_size", "pictures_every_n_epochs")


class VAETask(Task):
    """Trains a :class:`~litlab.generative.models.vae.VAE` by maximising the ELBO.

    The posterior is a diagonal Gaussian sampled with the reparameterisation trick; the prior is
    N(0, I) and their KL divergence is the closed form. ``likelihood`` is ``bernoulli`` (the
    decoder gives logits; binary or binarised pixels) or ``gaussian`` (the decoder gives means;
    one standard deviation for all pixels, learned as in the sigma-VAE of Rybkin et al. 2021,
    or fixed). Gaussian pixels are dequantised, ``(255 x + u) / 256`` with u ~ U(0, 1), and
    ``log 256`` per pixel is subtracted, so its nats bound the log-probability of the 8-bit
    images as the Bernoulli ones do for the binarised images.

    Every number is in nats per image, logged for ``train``, ``val`` and ``test``:
    ``<stage>/recon`` (-E_q log p(x|z)), ``<stage>/kl`` (KL(q(z|x) || p(z))),
    ``<stage>/elbo`` (``-(recon + kl)``, a lower bound on log p(x)) and ``<stage>/loss``
    (``recon + kl_weight * kl``, the objective; in validation and test with the weight
    ``beta``, so ``-elbo`` for a plain VAE). ``test/nll_iwae`` is the importance-weighted
    bound with ``iwae_samples`` samples, an estimate of -log p(x) tighter than -ELBO. The best
    checkpoint has the highest ``val/elbo`` (the loss changes with the KL weight).

    Binarisation ``dynamic`` draws ``x ~ Bernoulli(pixels)`` anew each time a training batch is
    seen; validation and test images get one fixed draw (seeded by ``eval_seed`` and the batch
    index), so their numbers are comparable between epochs and runs.
    """

    monitor = "val/elbo"
    monitor_mode = "max"

    def __init__(
        self,
        network: VAE,
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli",
        binarize: Literal["dynamic", "none"] = "dynamic",
        beta: NonNegativeFloat = 1.0,
        kl_warmup_steps: NonNegativeInt = 0,
        decoder_std: PositiveFloat = 0.1,
        learn_decoder_std: bool = True,
        iwae_samples: NonNegativeInt = 100,
        iwae_chunk_size: PositiveInt = 10,
        eval_seed: int = 0,
        pictures_every_n_epochs: NonNegativeInt = 5,
        **kwargs: Any,
    ) -> None:
        """Args:
        network: The encoder and decoder (a ``class_path`` in YAML), e.g.
            litlab.generative.models.vae_conv.ConvVAE.
        likelihood: ``bernoulli`` (decoder logits) or ``gaussian`` (decoder means).
        binarize: Bernoulli only: ``dynamic`` binarises the [0, 1] pixels (fresh draws in
            training, a fixed draw in evaluation); ``none`` uses the grey levels as targets
            (then the numbers are no log-likelihood). Gaussian needs ``none``.
        beta: Weight of the KL term after warm-up (1: the ELBO; > 1: beta-VAE).
        kl_warmup_steps: Optimizer steps over which the KL weight rises linearly from 0 to
            ``beta`` (0: ``beta`` from the start).
        decoder_std: Gaussian only: the pixels' standard deviation (its start if learned).
        learn_decoder_std: Gaussian only: learn the standard deviation.
        iwae_samples: Importance samples per test image for ``test/nll_iwae`` (0: skip it).
        iwae_chunk_size: Samples decoded at once (times the batch size), to bound memory.
        eval_seed: Seed of the fixed validation/test binarisation or dequantisation noise.
        pictures_every_n_epochs: Log reconstructions, samples, an interpolation (and a latent
            map for a 2-d latent) every this many epochs and at test (0: no pictures).
        **kwargs: The other optimizer arguments of :class:`~litlab.core.task.Task`
            (``optimizer``, ``lr_scheduler``, ...), handed on as they are.
        """
        super().__init__(**kwargs)
        _check_options(
            likelihood, binarize, beta, kl_warmup_steps, decoder_std, iwae_samples,
            iwae_chunk_size, pictures_every_n_epochs,
        )  # fmt: skip
        self.save_hyperparameters(
            logger=False, ignore=[*module_args_to_ignore("network"), *EVALUATION_ARGS]
        )
        self.network = network
        self.likelihood = likelihood
        self.binarize = binarize
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.iwae_samples = iwae_samples
        self.iwae_chunk_size = iwae_chunk_size
        self.eval_seed = eval_seed
        self.pictures_every_n_epochs = pictures_every_n_epochs
        if likelihood == "gaussian":
            log_std = torch.tensor(math.log(decoder_std))
            if learn_decoder_std:
                self.decoder_log_std = nn.Parameter(log_std)
            else:
                self.register_buffer("decoder_log_std", log_std)

    def configure_callbacks(self) -> list[Callback]:
        if not self.pictures_every_n_epochs:
            return []
        return [VAEPictures(every_n_epochs=self.pictures_every_n_epochs)]

    def setup(self, stage: str) -> None:
        facts = self.data_facts
        pixel_range = facts.pixel_range or "unit"
        if pixel_range != "unit":
            raise LitlabError(
                f"a VAE models pixels in [0, 1], but the data has pixel_range={pixel_range!r}. "
                "Set data.init_args.pixel_range: unit."
            )
        image_shape = facts.image_shape
        if image_shape is not None and tuple(image_shape) != self.network.image_shape:
            raise LitlabError(
                f"the data has images of shape {tuple(image_shape)} but the model was built for "
                f"{self.network.image_shape}. Set model.init_args.network.init_args.image_shape: "
                f"{list(image_shape)}."
            )

    # ----- the objective

    def kl_weight(self, step: int | None = None) -> float:
        """The KL term's weight at optimizer step ``step`` (default: the current one)."""
        step = self.global_step if step is None else step
        if self.kl_warmup_steps == 0:
            return self.beta
        return self.beta * min(1.0, step / self.kl_warmup_steps)

    def prepare_images(self, images: torch.Tensor, stage: str, batch_idx: int = 0) -> torch.Tensor:
        """What the model sees of [0, 1] ``images``: binarised or dequantised (see the class).

        ``stage`` ``"train"`` draws fresh noise on the images' device; any other stage the
        fixed noise of ``(eval_seed, batch_idx)``, identical on every call and device.
        """
        if self.likelihood == "bernoulli" and self.binarize == "none":
            return images
        if stage == "train":
            noise = torch.rand_like(images)
        else:
            generator = torch.Generator().manual_seed(_eval_noise_seed(self.eval_seed, batch_idx))
            noise = torch.rand(images.shape, generator=generator).to(images.device, images.dtype)
        if self.likelihood == "bernoulli":
            return (noise < images).to(images.dtype)
        return (images * (PIXEL_LEVELS - 1) + noise) / PIXEL_LEVELS

    def log_likelihood(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, (B,), from the decoder's output ``params`` (B, C, H, W)."""
        images, params = images.float(), params.float()
        if self.likelihood == "bernoulli":
            per_pixel = -F.binary_cross_entropy_with_logits(params, images, reduction="none")
        else:
            log_std = self.decoder_log_std.float()
            per_pixel = (
                -0.5 * ((images - params) * torch.exp(-log_std)) ** 2
                - log_std
                - 0.5 * LOG_2PI
                - math.log(PIXEL_LEVELS)
            )
        return per_pixel.flatten(1).sum(1)

    def elbo_terms(
        self, images: torch.Tensor, noise: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``recon`` (-log p(x|z)), ``kl`` and ``elbo`` (``-(recon + kl)``) per image in nats,
        each (B,), from one posterior sample ``z = mean + std * noise`` (default noise: drawn)."""
        mean, log_var = (t.float() for t in self.network.encode(images))
        if noise is None:
            noise = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * log_var) * noise
        recon = -self.log_likelihood(images, self.network.decode(z))
        kl = 0.5 * (mean**2 + log_var.exp() - log_var - 1).sum(-1)
        return {"recon": recon, "kl": kl, "elbo": -(recon + kl)}

    @torch.no_grad()
    def iwae_log_likelihood(
        self, images: torch.Tensor, num_samples: int, chunk_size: int | None = None
    ) -> torch.Tensor:
        """The importance-weighted bound on log p(x) per image, (B,), in float64:
        ``log mean_k p(x, z_k) / q(z_k|x)`` over ``num_samples`` posterior samples, decoded
        ``chunk_size`` (default ``iwae_chunk_size``) at a time. One sample gives the ELBO in
        expectation; more give a tighter bound (Burda et al., 2016)."""
        chunk_size = chunk_size or self.iwae_chunk_size
        mean, log_var = (t.float() for t in self.network.encode(images))
        std = torch.exp(0.5 * log_var)
        log_weights = []
        for start in range(0, num_samples, chunk_size):
            n = min(chunk_size, num_samples - start)
            noise = torch.randn(n, *mean.shape, device=mean.device)
            z = mean + std * noise  # (n, B, latent_dim)
            params = self.network.decode(z.flatten(0, 1))
            targets = images.expand(n, *images.shape).flatten(0, 1)
            log_px = self.log_likelihood(targets, params).view(n, -1)
            log_pz = -0.5 * (z**2 + LOG_2PI).sum(-1)
            log_qz = -0.5 * (noise**2 + LOG_2PI + log_var).sum(-1)
            log_weights.append((log_px + log_pz - log_qz).double())
        return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(num_samples)

    # ----- training and evaluation

    def _step(self, batch: Any, batch_idx: int, stage: str) -> torch.Tensor:
        images = self.prepare_images(_images(batch), stage, batch_idx)
        terms = self.elbo_terms(images)
        # Evaluation scores the objective warm-up leads to, so val/loss is comparable across
        # epochs (and is -ELBO with beta 1); training optimises the warm-up's weight.
        kl_weight = self.kl_weight() if stage == "train" else self.beta
        loss = (terms["recon"] + kl_weight * terms["kl"]).mean()
        on_step = stage == "train"
        # Weighted by the batch size, the epoch values are means over every image; synced over
        # ranks at epoch end only (a collective per step would cost more than it shows).
        logged = {"batch_size": images.shape[0], "sync_dist": not on_step}
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, **logged)
        for name in ("elbo", "recon", "kl"):
            value = terms[name].detach().mean()
            self.log(
                f"{stage}/{name}",
                value,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "elbo",
                **logged,
            )
        if on_step:
            self.log("train/kl_weight", kl_weight, on_step=True, on_epoch=False)
            if self.likelihood == "gaussian":
                self.log("train/decoder_std", self.decoder_log_std.exp(), on_step=True)
        if stage == "test" and self.iwae_samples:
            nll = -self.iwae_log_likelihood(images, self.iwae_samples)
            self.log("test/nll_iwae", nll.mean().float(), prog_bar=True, **logged)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "test")

    # ----- images

    @torch.no_grad()
    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded latents ``z`` (B, latent_dim) as images in [0, 1]: the Bernoulli
        probabilities or the Gaussian means (clamped)."""
        params = self.network.decode(z.to(self.device, self.dtype)).float()
        return params.sigmoid() if self.likelihood == "bernoulli" else params.clamp(0, 1)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` decoded from their posterior means, in [0, 1]."""
        mean, _ = self.network.encode(images.to(self.device, self.dtype))
        return self.decode_images(mean)

    @torch.no_grad()
    def sample_images(
        self, num_images: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``num_images`` images (N, C, H, W) in [0, 1], on this module's device, decoded from
        z ~ N(0, I) in chunks of ``SAMPLE_CHUNK``.

        Args:
            num_images: How many images.
            generator: Source of the noise, on any device (z is drawn there: a CPU generator
                gives the same images on every device); default the global RNG.
        """
        device = generator.device if generator is not None else self.device
        z = torch.randn(num_images, self.network.latent_dim, generator=generator, device=device)
        return torch.cat([self.decode_images(chunk) for chunk in z.split(SAMPLE_CHUNK)])


def _eval_noise_seed(eval_seed: int, batch_idx: int) -> int:
    """One seed per (eval_seed, batch): a hash, as the CPU generator keeps only 32 bits of a
    seed (``eval_seed * 2**32 + batch_idx`` would ignore ``eval_seed``)."""
    digest = hashlib.blake2b(f"{eval_seed}/{batch_idx}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def _images(batch: Any) -> torch.Tensor:
    """The images of an ``(images, labels)`` batch or of a bare image tensor."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def _check_options(
    likelihood: str,
    binarize: str,
    beta: float,
    kl_warmup_steps: int,
    decoder_std: float,
    iwae_samples: int,
    iwae_chunk_size: int,
    pictures_every_n_epochs: int,
) -> None:
    if likelihood not in ("bernoulli", "gaussian"):
        raise LitlabError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    if binarize not in ("dynamic", "none"):
        raise LitlabError(f"binarize must be 'dynamic' or 'none', got {binarize!r}")
    if likelihood == "gaussian" and binarize != "none":
        raise LitlabError(
            "a Gaussian decoder models grey levels, not binarised pixels: set "
            "model.init_args.binarize: none (or likelihood: bernoulli)."
        )
    ranges = {
        "beta": (beta, 0),
        "kl_warmup_steps": (kl_warmup_steps, 0),
        "iwae_samples": (iwae_samples, 0),
        "iwae_chunk_size": (iwae_chunk_size, 1),
        "pictures_every_n_epochs": (pictures_every_n_epochs, 0),
    }
    for name, (value, low) in ranges.items():
        if value < low:
            raise LitlabError(f"{name} must be at least {low}, got {value}")
    if decoder_std <= 0:
        raise LitlabError(f"decoder_std must be positive, got {decoder_std}")
