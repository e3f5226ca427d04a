"""`litlab predict` input: a folder of images of any size, or the test split by index."""

import pytest
import torch
from PIL import Image

from litlab.core.errors import LitlabError
from litlab.vision.data.image_folder import ImageFolderDataset
from litlab.vision.data.mnist import MNISTDataModule


def test_folder_images_become_model_inputs_named_by_file(tmp_path, data_root):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (56, 40), (255, 255, 255)).save(tmp_path / "sub" / "white.png")
    Image.new("L", (28, 28), 0).save(tmp_path / "black.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    dm = MNISTDataModule(data_dir=str(data_root), predict_dir=str(tmp_path), num_workers=0)
    dm.setup("predict")
    images, names = next(iter(dm.predict_dataloader()))
    assert list(names) == ["black.jpg", "sub/white.png"]
    assert images.shape == (2, 1, 28, 28)
    # Normalised with MNIST's statistics: black is -mean/std, white (1-mean)/std.
    torch.testing.assert_close(images[0].unique(), torch.tensor([-0.1307 / 0.3081]))
    torch.testing.assert_close(images[1].unique(), torch.tensor([(1 - 0.1307) / 0.3081]))


def test_folder_without_images_or_missing_is_a_clear_error(tmp_path):
    with pytest.raises(LitlabError, match="no images in"):
        ImageFolderDataset(tmp_path, "L", (28, 28), transform=lambda x: x)
    with pytest.raises(LitlabError, match="is not a directory"):
        ImageFolderDataset(tmp_path / "absent", "L", (28, 28), transform=lambda x: x)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    dataset = ImageFolderDataset(tmp_path, "L", (28, 28), transform=lambda x: x)
    with pytest.raises(LitlabError, match=r"broken\.png"):
        dataset[0]
