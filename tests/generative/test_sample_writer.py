"""SampleWriter and `litlab predict` of a diffusion model: one PNG per sample, a grid, the same
images for the same seed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from litlab.app.cli import main
from litlab.generative.callbacks.sample_writer import SampleWriter
from litlab.generative.models.unet import UNet
from litlab.generative.tasks.diffusion import DiffusionModel

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_DDPM = str(REPO_ROOT / "experiments" / "generative" / "mnist_ddpm.yaml")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quiet_trainer(root: Path, **kwargs) -> Trainer:
    return Trainer(
        default_root_dir=root, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


def read_image(path: Path) -> torch.Tensor:
    """A PNG as a uint8 (C, H, W) tensor."""
    pixels = torch.tensor(np.array(Image.open(path)))
    return pixels[None] if pixels.dim() == 2 else pixels.permute(2, 0, 1)


def dummy_loader(batches: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(batches, 1)), batch_size=1)


class FixedImages(LightningModule):
    """predict_step returns three 2x3 RGB images per batch, numbered on."""

    def predict_step(self, batch, batch_idx):
        index = torch.arange(3 * batch_idx, 3 * batch_idx + 3)
        images = (index.view(-1, 1, 1, 1) * 10 + torch.arange(18).view(1, 3, 2, 3)).to(torch.uint8)
        return {"images": images, "index": index}


def test_writer_files_and_grid(tmp_path):
    writer = SampleWriter(grid_size=4, nrow=2)
    quiet_trainer(tmp_path, callbacks=[writer]).predict(FixedImages(), dummy_loader(3))
    assert writer.folder == tmp_path / "samples"
    assert sorted(p.name for p in writer.folder.iterdir()) == [f"{i:05d}.png" for i in range(9)]
    for i in range(9):
        expected = (i * 10 + torch.arange(18).view(3, 2, 3)).to(torch.uint8)
        assert torch.equal(read_image(writer.folder / f"{i:05d}.png"), expected)
    # 2 x 2 images of 2x3 pixels with 2-pixel padding around each.
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (2 * 3 + 3 * 2, 2 * 2 + 3 * 2)


def tiny_task(**kwargs) -> DiffusionModel:
    torch.manual_seed(0)
    unet = UNet(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2),
                num_res_blocks=1, groups=4, num_heads=2)  # fmt: skip
    return DiffusionModel(unet, num_timesteps=50, schedule="cosine", sampling_steps=3, **kwargs)


def predicted_files(root: Path, task: DiffusionModel, batches: int, seed: int = 0) -> dict:
    seed_everything(seed, verbose=False)
    quiet_trainer(root).predict(task, dummy_loader(batches))
    folder = root / "samples"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_predict_writes_num_samples_and_a_grid(tmp_path):
    task = tiny_task(num_samples=5, sample_batch_size=2)
    files = predicted_files(tmp_path / "a", task, batches=10)
    assert list(files) == [f"{i:05d}.png" for i in range(5)]
    assert (tmp_path / "a" / "grid.png").is_file()
    assert read_image(tmp_path / "a" / "samples" / "00000.png").shape == (1, 8, 8)
    # Same seed: the same images, also when the loader has fewer batches than chunks; another
    # seed: others.
    assert predicted_files(tmp_path / "b", task, batches=10) == files
    assert predicted_files(tmp_path / "c", task, batches=1) == files
    assert predicted_files(tmp_path / "d", task, batches=10, seed=1) != files


# ----- through the litlab command


@pytest.fixture
def cli(monkeypatch, in_tmp_dir, data_root):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    return in_tmp_dir


def runs(root: Path) -> set[Path]:
    folder = root / "runs" / "mnist_ddpm"
    return set(folder.iterdir()) if folder.is_dir() else set()


def test_litlab_predict_from_the_best_checkpoint(cli):
    quiet = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    small = ["--model.network.init_args.base_channels", "8", "--model.sample_every_n_epochs", "0"]
    main(
        [
            "fit", "-c", MNIST_DDPM, *quiet, *small,
            "--trainer.max_steps", "2", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1",
        ]
    )  # fmt: skip
    (fit_run,) = runs(cli)
    assert (fit_run / "checkpoints" / "best.ckpt").is_file()

    def predict() -> tuple[Path, dict[str, bytes]]:
        before = runs(cli)
        main(
            [
                "predict", "-c", MNIST_DDPM, "--ckpt_path", "best", *quiet, *small,
                "--model.sampler", "ddim", "--model.sampling_steps", "3",
                "--model.num_samples", "5", "--model.sample_batch_size", "2",
            ]
        )  # fmt: skip
        (run,) = runs(cli) - before
        return run, {p.name: p.read_bytes() for p in sorted((run / "samples").iterdir())}

    run, files = predict()
    assert list(files) == [f"{i:05d}.png" for i in range(5)]
    assert (run / "grid.png").is_file()
    assert read_image(run / "samples" / "00004.png").shape == (1, 28, 28)
    assert predict()[1] == files
