"""VAEPictures: the grids it writes during validation and test, their layout, and the latent
grid at Gaussian quantiles."""

import torch
from lightning.pytorch import Trainer
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from litlab.generative.callbacks.vae_pictures import VAEPictures, latent_grid
from litlab.generative.models.vae_mlp import MLPVAE
from litlab.generative.tasks.vae import VAETask

SIDE = 6  # image side in pixels; grids pad every image with 2 pixels


def grid_size(rows: int, cols: int) -> tuple[int, int]:
    """(width, height) of a torchvision grid of SIDE x SIDE images."""
    return cols * (SIDE + 2) + 2, rows * (SIDE + 2) + 2


def loader() -> DataLoader:
    images = torch.rand(20, 1, SIDE, SIDE)
    return DataLoader(TensorDataset(images, torch.zeros(20, dtype=torch.long)), batch_size=5)


def test_validation_and_test_pictures_are_written(tmp_path):
    torch.manual_seed(0)
    task = VAETask(
        MLPVAE((1, SIDE, SIDE), latent_dim=2, hidden_features=[16]), pictures_every_n_epochs=0
    )
    pictures = VAEPictures(
        every_n_epochs=2,
        num_reconstructions=4,
        num_samples=6,
        interpolation_steps=5,
        latent_map_size=3,
    )
    trainer = Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=2,
        callbacks=[pictures],
    )
    trainer.fit(task, loader(), loader())
    trainer.test(task, loader())
    written = sorted(path.name for path in (tmp_path / "images").iterdir())
    # Validation pictures at the end of the second epoch only (step 4); test ones at the end.
    kinds = ("interpolation", "latent_map", "reconstructions", "samples")
    assert written == sorted(
        [f"val_{kind}_0000004.png" for kind in kinds]
        + [f"test_{kind}_0000006.png" for kind in kinds]
    )
    sizes = {name: Image.open(tmp_path / "images" / name).size for name in written}
    assert sizes["test_reconstructions_0000006.png"] == grid_size(1, 8)  # 4 (input, output) pairs
    assert sizes["test_samples_0000006.png"] == grid_size(1, 6)
    assert sizes["test_interpolation_0000006.png"] == grid_size(1, 5 + 2)  # with both inputs
    assert sizes["test_latent_map_0000006.png"] == grid_size(3, 3)


def test_no_latent_map_beyond_two_dimensions(tmp_path):
    task = VAETask(MLPVAE((1, SIDE, SIDE), latent_dim=3, hidden_features=[8]))
    trainer = Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_test_batches=1,
    )
    trainer.test(task, loader())
    written = {path.name.rsplit("_", 1)[0] for path in (tmp_path / "images").iterdir()}
    assert written == {"test_interpolation", "test_reconstructions", "test_samples"}


def test_latent_grid_covers_the_plane_at_gaussian_quantiles():
    grid = latent_grid(3).view(3, 3, 2)
    quantile = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.95)).item()
    torch.testing.assert_close(grid[0, 0], torch.tensor([-quantile, quantile]))  # top left
    torch.testing.assert_close(grid[1, 1], torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(grid[2, 2], torch.tensor([quantile, -quantile]))  # bottom right
