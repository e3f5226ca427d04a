"""log_image_grid: one PNG per call in the run folder, pixels mapped from the value range."""

import torch
from lightning.pytorch import Trainer
from PIL import Image

from litlab.generative.callbacks.image_grid import log_image_grid


def test_grid_file_layout_and_pixel_mapping(tmp_path):
    trainer = Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu")
    images = torch.full((6, 1, 4, 4), -1.0)
    images[0] = 1.0  # white first image, the rest black, on [-1, 1]
    path = log_image_grid(trainer, "val/samples", images, nrow=3, value_range=(-1.0, 1.0))
    assert path == tmp_path / "images" / "val_samples_0000000.png"
    grid = torch.tensor(list(Image.open(path).convert("L").getdata())).reshape(
        Image.open(path).size[1], -1
    )
    # 2 rows x 3 columns of 4x4 images with 2-pixel white padding: 14 x 20 pixels.
    assert grid.shape == (2 * 4 + 3 * 2, 3 * 4 + 4 * 2)
    assert (grid[2:6, 2:6] == 255).all()
    assert (grid[2:6, 8:12] == 0).all()
    assert (grid[8:12, 2:6] == 0).all()
