"""VAETask: the ELBO against a hand computation, the IWAE bound against the exact likelihood of a
linear Gaussian model and against the ELBO, the KL warm-up, binarisation and dequantisation,
and a short fit on real MNIST."""

import math

import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn

from litlab.core.errors import LitlabError
from litlab.generative.callbacks.vae_pictures import VAEPictures
from litlab.generative.models.vae import VAE
from litlab.generative.models.vae_mlp import MLPVAE
from litlab.generative.tasks.vae import VAETask
from litlab.vision.data.mnist import MNISTDataModule


class FixedPosterior(nn.Module):
    """An encoder that ignores its input: the same posterior for every batch."""

    def __init__(self, mean: torch.Tensor, log_var: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.log_var = mean, log_var

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean, self.log_var


class LinearDecoder(nn.Module):
    """params = z W^T + b, shaped (B, 1, 2, 2)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight.T + self.bias).view(-1, 1, 2, 2)


WEIGHT = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3], [0.0, 1.0]])
BIAS = torch.tensor([0.1, 0.0, -0.2, 0.3])
MEAN = torch.tensor([[0.5, -1.0], [0.0, 0.3]])
LOG_VAR = torch.tensor([[-0.2, 0.1], [0.4, -1.0]])
NOISE = torch.tensor([[0.3, -1.2], [1.5, 0.2]])
PIXELS = [[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]]


def fixed_task(**kwargs) -> VAETask:
    model = VAE(FixedPosterior(MEAN, LOG_VAR), LinearDecoder(WEIGHT, BIAS), 2, (1, 2, 2))
    return VAETask(model, pictures_every_n_epochs=0, **kwargs)


def decoder_outputs_by_hand(image: int) -> list[float]:
    z = [
        MEAN[image, j].item() + math.exp(0.5 * LOG_VAR[image, j].item()) * NOISE[image, j].item()
        for j in range(2)
    ]
    return [sum(WEIGHT[i, j].item() * z[j] for j in range(2)) + BIAS[i].item() for i in range(4)]


def kl_by_hand(image: int) -> float:
    return sum(
        0.5 * (m**2 + math.exp(v) - v - 1)
        for m, v in zip(MEAN[image].tolist(), LOG_VAR[image].tolist(), strict=True)
    )


def test_bernoulli_elbo_matches_a_hand_computation():
    terms = fixed_task().elbo_terms(torch.tensor(PIXELS).view(2, 1, 2, 2), noise=NOISE)
    for image in range(2):
        log_px = 0.0
        for x, logit in zip(PIXELS[image], decoder_outputs_by_hand(image), strict=True):
            p = 1 / (1 + math.exp(-logit))
            log_px += x * math.log(p) + (1 - x) * math.log(1 - p)
        kl = kl_by_hand(image)
        assert terms["recon"][image].item() == pytest.approx(-log_px, rel=1e-5)
        assert terms["kl"][image].item() == pytest.approx(kl, rel=1e-5)
        assert terms["elbo"][image].item() == pytest.approx(log_px - kl, rel=1e-5)
    # The same KL from torch.distributions.
    posterior = torch.distributions.Normal(MEAN, torch.exp(0.5 * LOG_VAR))
    prior = torch.distributions.Normal(0.0, 1.0)
    expected_kl = torch.distributions.kl_divergence(posterior, prior).sum(-1)
    torch.testing.assert_close(terms["kl"], expected_kl)


def test_gaussian_log_likelihood_matches_a_hand_computation():
    std = 0.5
    task = fixed_task(likelihood="gaussian", binarize="none", decoder_std=std)
    images = torch.tensor([[0.2, 0.9, 0.0, 0.4], [1.0, 0.1, 0.5, 0.7]]).view(2, 1, 2, 2)
    terms = task.elbo_terms(images, noise=NOISE)
    for image in range(2):
        log_px = sum(
            -0.5 * ((x - mu) / std) ** 2
            - math.log(std)
            - 0.5 * math.log(2 * math.pi)
            # Dequantised 8-bit pixels: density on [0, 1) times the bin width 1/256.
            - math.log(256)
            for x, mu in zip(
                images[image].flatten().tolist(), decoder_outputs_by_hand(image), strict=True
            )
        )
        assert terms["recon"][image].item() == pytest.approx(-log_px, rel=1e-5)
        assert terms["elbo"][image].item() == pytest.approx(log_px - kl_by_hand(image), rel=1e-5)


class ExactPosterior(nn.Module):
    """The true posterior of the linear Gaussian model x = W z + b + N(0, s^2 I) with
    orthogonal columns of W, which makes it diagonal: precision I + W^T W / s^2."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, std: float) -> None:
        super().__init__()
        self.weight, self.bias, self.std = weight, bias, std
        self.variance = 1 / (1 + (weight**2).sum(0) / std**2)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.flatten(1)
        mean = (x - self.bias) @ self.weight * self.variance / self.std**2
        return mean, self.variance.log().expand_as(mean)


def test_iwae_and_elbo_equal_the_exact_log_likelihood_when_q_is_the_true_posterior():
    torch.manual_seed(0)
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [1.0, 0.0]])  # orthogonal columns
    bias = torch.tensor([0.1, -0.2, 0.3, 0.0])
    std = 0.5
    model = VAE(ExactPosterior(weight, bias, std), LinearDecoder(weight, bias), 2, (1, 2, 2))
    task = VAETask(
        model,
        likelihood="gaussian",
        binarize="none",
        decoder_std=std,
        learn_decoder_std=False,
        pictures_every_n_epochs=0,
    )
    images = torch.tensor([[0.3, 0.5, 0.9, 0.1], [1.0, -0.4, 0.2, 0.6]]).view(2, 1, 2, 2)
    marginal = torch.distributions.MultivariateNormal(
        bias.double(), (weight @ weight.T + std**2 * torch.eye(4)).double()
    )
    expected = marginal.log_prob(images.flatten(1).double()) - 4 * math.log(256)
    # With q = p(z|x) every importance weight is p(x): any k, any chunking, gives log p(x).
    for k, chunk in ((1, 1), (5, 2), (50, 50)):
        estimate = task.iwae_log_likelihood(images, k, chunk_size=chunk)
        assert estimate.dtype == torch.float64
        torch.testing.assert_close(estimate, expected, atol=1e-4, rtol=0)
    many = images.repeat(20_000, 1, 1, 1)
    elbo = task.elbo_terms(many)["elbo"].view(20_000, 2).double().mean(0)
    torch.testing.assert_close(elbo, expected, atol=0.05, rtol=0)


def trained_tiny_vae() -> tuple[VAETask, torch.Tensor]:
    """A 4x4 Bernoulli VAE after 150 Adam steps on noisy copies of four patterns."""
    torch.manual_seed(0)
    patterns = torch.zeros(4, 1, 4, 4)
    patterns[0, :, 0] = patterns[1, :, :, 0] = patterns[3, :, 3] = 1
    patterns[2] = torch.eye(4)
    data = patterns.repeat(16, 1, 1, 1)
    data = (data + torch.bernoulli(torch.full_like(data, 0.05))) % 2
    task = VAETask(MLPVAE((1, 4, 4), latent_dim=2, hidden_features=[32]), pictures_every_n_epochs=0)
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        (-task.elbo_terms(data)["elbo"].mean()).backward()
        optimizer.step()
    return task, data[:8]


def test_iwae_bound_tightens_the_elbo_on_a_trained_model():
    task, images = trained_tiny_vae()
    task.requires_grad_(False)
    draws = 4000
    elbo_draws = task.elbo_terms(images.repeat(draws, 1, 1, 1))["elbo"].view(draws, -1)
    elbo, elbo_error = elbo_draws.mean(0), elbo_draws.std(0) / math.sqrt(draws)
    iwae_50 = torch.stack([task.iwae_log_likelihood(images, 50) for _ in range(20)]).mean(0)
    # log p(x) >= IWAE_50 >= ELBO (in expectation); the estimate of -log p(x) is not above -ELBO.
    assert (iwae_50 >= elbo.double() - 4 * elbo_error.double()).all()
    assert iwae_50.mean() > elbo.mean() + 0.1
    # One importance sample is the ELBO itself, in expectation.
    iwae_1 = task.iwae_log_likelihood(images.repeat(draws, 1, 1, 1), 1).view(draws, -1).mean(0)
    assert (iwae_1 - elbo.double()).abs().max() < 5 * math.sqrt(2) * elbo_error.max()


def test_kl_warmup_ramps_linearly_from_zero_to_beta():
    task = fixed_task(beta=2.0, kl_warmup_steps=100)
    assert [task.kl_weight(step) for step in (0, 25, 50, 100, 250)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert fixed_task(beta=4.0).kl_weight(0) == 4.0


def test_dynamic_binarisation_draws_bernoulli_pixels_and_evaluation_draws_once():
    task = fixed_task()
    intensities = torch.tensor([0.1, 0.5, 0.9])
    images = intensities.view(3, 1, 1, 1).expand(3, 1, 64, 64).contiguous()
    first, second = task.prepare_images(images, "train"), task.prepare_images(images, "train")
    for binary in (first, second, task.prepare_images(images, "val", batch_idx=0)):
        assert set(binary.unique().tolist()) <= {0.0, 1.0}
        torch.testing.assert_close(binary.mean(dim=(1, 2, 3)), intensities, atol=0.03, rtol=0)
    assert not torch.equal(first, second)  # fresh draws every time a training batch is seen
    val = task.prepare_images(images, "val", batch_idx=3)
    assert torch.equal(val, task.prepare_images(images, "test", batch_idx=3))
    assert not torch.equal(val, task.prepare_images(images, "val", batch_idx=4))
    assert not torch.equal(val, fixed_task(eval_seed=1).prepare_images(images, "val", 3))
    assert torch.equal(fixed_task(binarize="none").prepare_images(images, "train"), images)


def test_gaussian_pixels_are_dequantised_within_their_8_bit_bin():
    task = fixed_task(likelihood="gaussian", binarize="none")
    levels = torch.randint(0, 256, (4, 1, 8, 8))
    for stage in ("train", "val"):
        offset = task.prepare_images(levels / 255, stage) * 256 - levels
        assert offset.min() >= -1e-4
        assert offset.max() < 1 + 1e-4
        assert offset.std() > 0.2  # spread over the bin, not at one end of it


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"likelihood": "gaussian"}, "binarize: none"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
        ({"iwae_chunk_size": 0}, "iwae_chunk_size"),
        ({"likelihood": "gaussian", "binarize": "none", "decoder_std": 0.0}, "decoder_std"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(LitlabError, match=message):
        fixed_task(**options)


def test_pictures_callback_comes_with_the_task_unless_turned_off():
    model = MLPVAE((1, 4, 4), latent_dim=2, hidden_features=[8])
    [callback] = VAETask(model, pictures_every_n_epochs=3).configure_callbacks()
    assert isinstance(callback, VAEPictures)
    assert callback.every_n_epochs == 3
    assert VAETask(model, pictures_every_n_epochs=0).configure_callbacks() == []


def quiet_trainer(tmp_path, **kwargs) -> Trainer:
    return Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def mnist(data_root, pixel_range: str = "unit") -> MNISTDataModule:
    return MNISTDataModule(
        data_dir=str(data_root),
        batch_size=64,
        num_workers=0,
        download=False,
        pixel_range=pixel_range,
    )


@pytest.mark.parametrize(
    "options", [{}, {"likelihood": "gaussian", "binarize": "none"}], ids=["bernoulli", "gaussian"]
)
def test_a_short_fit_on_mnist_lowers_the_loss(options, data_root, tmp_path):
    torch.manual_seed(0)
    data = mnist(data_root)
    data.setup("fit")
    images, _ = next(iter(data.val_dataloader()))
    task = VAETask(
        MLPVAE(latent_dim=8, hidden_features=[128]),
        lr=3e-3,
        pictures_every_n_epochs=0,
        **options,
    )

    def loss() -> float:
        with torch.no_grad():
            return -task.elbo_terms(task.prepare_images(images, "val"))["elbo"].mean().item()

    before = loss()
    quiet_trainer(tmp_path, max_steps=40, limit_val_batches=0).fit(task, datamodule=data)
    assert loss() < 0.6 * before


def test_samples_are_decoded_prior_draws_in_the_unit_range():
    task = VAETask(MLPVAE((1, 4, 4), latent_dim=3, hidden_features=[8]), pictures_every_n_epochs=0)
    samples = task.sample_images(2500, generator=torch.Generator().manual_seed(7))
    assert samples.shape == (2500, 1, 4, 4)
    assert samples.min() >= 0
    assert samples.max() <= 1
    z = torch.randn(2500, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(samples, task.network.decode(z).sigmoid())


def test_standardized_pixels_are_refused(data_root, tmp_path):
    task = VAETask(MLPVAE(latent_dim=2, hidden_features=[8]), pictures_every_n_epochs=0)
    with pytest.raises(LitlabError, match="pixel_range: unit"):
        quiet_trainer(tmp_path, max_steps=1).fit(task, datamodule=mnist(data_root, "standardized"))
