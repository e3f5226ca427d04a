"""DiffusionModel: the loss against a hand computation, training lowering it, label dropout,
Lightning's EMA arithmetic and which weights sampling uses, sample_images, and bad options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.errors import LitlabError
from litlab.generative.diffusion.schedules import NoiseSchedule
from litlab.generative.models.unet import UNet
from litlab.generative.tasks.diffusion import DiffusionModel, predict_chunks
from litlab.vision.data.mnist import MNISTDataModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_unet(num_classes: int | None = None) -> UNet:
    return UNet(
        in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
        attention_resolutions=(4,), num_heads=2, groups=4, num_classes=num_classes,
    )  # fmt: skip


def tiny_task(**kwargs) -> DiffusionModel:
    torch.manual_seed(0)
    options = {"num_timesteps": 50, "schedule": "cosine", "sampling_steps": 5, "lr": 3e-3}
    return DiffusionModel(kwargs.pop("network", None) or tiny_unet(), **{**options, **kwargs})


def fixed_batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    # Smooth images (a blurred square at a random place) in [-1, 1]: something to learn.
    images = -torch.ones(n, 1, 8, 8)
    for i, (r, c) in enumerate(torch.randint(0, 5, (n, 2), generator=generator).tolist()):
        images[i, 0, r : r + 4, c : c + 4] = 1.0
    return images, torch.randint(0, 3, (n,), generator=generator)


def loader(batch, repeats: int = 1) -> DataLoader:
    images, labels = batch
    dataset = TensorDataset(images.repeat(repeats, 1, 1, 1), labels.repeat(repeats))
    return DataLoader(dataset, batch_size=len(images))


def quiet_trainer(**kwargs) -> Trainer:
    options = {
        "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False,
    }  # fmt: skip
    return Trainer(**{**options, **kwargs})


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_loss_is_the_mse_to_the_target(prediction):
    task = tiny_task(prediction=prediction)
    images, labels = fixed_batch(4)
    loss = task._loss((images, labels), seeded(5))
    generator = seeded(5)
    t = torch.randint(0, 50, (4,), generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    ab = torch.cumprod(1 - NoiseSchedule.named("cosine", 50).betas, 0)[t].float().view(-1, 1, 1, 1)
    xt = ab.sqrt() * images + (1 - ab).sqrt() * noise
    target = noise if prediction == "eps" else ab.sqrt() * noise - (1 - ab).sqrt() * images
    assert torch.allclose(loss, F.mse_loss(task.network(xt, t), target), atol=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_training_steps_lower_the_loss_on_a_fixed_batch(prediction):
    task = tiny_task(prediction=prediction, sample_every_n_epochs=0)
    batch = fixed_batch()
    task.eval()
    before = torch.stack([task._loss(batch, seeded(s)) for s in range(8)]).mean()
    task.train()
    quiet_trainer(max_steps=30, limit_val_batches=0).fit(task, loader(batch, repeats=30))
    task.eval()
    after = torch.stack([task._loss(batch, seeded(s)) for s in range(8)]).mean()
    assert after < 0.7 * before


class LabelSpy(nn.Module):
    """A stand-in network that records the labels it is given."""

    in_channels, image_size, num_classes = 1, 8, 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(()))
        self.labels: list[torch.Tensor] = []

    def forward(self, xt, t, labels=None):
        self.labels.append(labels)
        return self.scale * xt


def test_label_dropout_only_in_training():
    spy = LabelSpy()
    task = tiny_task(network=spy, cond_drop_prob=0.3)
    labels = torch.arange(3).repeat(2000)
    batch = (torch.zeros(len(labels), 1, 8, 8), labels)
    task.train()
    task._loss(batch)
    dropped = spy.labels[-1] == 3
    assert 0.27 < dropped.float().mean() < 0.33
    assert torch.equal(spy.labels[-1][~dropped], labels[~dropped])
    task.eval()
    task._loss(batch)
    assert torch.equal(spy.labels[-1], labels)


def test_unconditional_model_gets_no_labels():
    task = tiny_task()
    assert task.num_classes is None
    images, labels = fixed_batch(2)
    # The UNet refuses labels when it has no classes: the task must not pass them.
    task._loss((images, labels))


class WeightRecorder(Callback):
    """The live weights after every optimizer step, and what sampling would use when."""

    def __init__(self) -> None:
        self.live: list[torch.Tensor] = []
        self.sampling: list[tuple[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.live.append(flat(pl_module.network))
        self.sampling.append(("train", flat(pl_module.sampling_network())))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        self.sampling.append(("validation", flat(pl_module.sampling_network())))

    def on_validation_epoch_end(self, trainer, pl_module):
        self.sampling.append(("validation end", flat(pl_module.sampling_network())))


def flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def test_ema_update_arithmetic_and_sampling_uses_the_average():
    decay = 0.6
    task = tiny_task(sample_every_n_epochs=0)
    recorder = WeightRecorder()
    ema = EMAWeightAveraging(decay=decay)
    batch = fixed_batch(4)
    # Validation after every training step; the recorder runs after the EMA callback.
    quiet_trainer(max_steps=3, val_check_interval=1, num_sanity_val_steps=0,
                  callbacks=[ema, recorder]).fit(task, loader(batch, 3), loader(batch))  # fmt: skip
    w1, w2, w3 = recorder.live
    # The first update copies the weights; then ema = decay * ema + (1 - decay) * w.
    expected = [w1, decay * w1 + (1 - decay) * w2]
    expected.append(decay * expected[1] + (1 - decay) * w3)
    # At the end of fit Lightning copies the average into the module.
    assert torch.allclose(flat(task.network), expected[2], atol=1e-6)
    assert not torch.allclose(expected[2], w3)
    # Sampling saw the average at every point: while training (the average kept apart), during
    # validation (the average swapped in) and after the swap back.
    phases = [phase for phase, _ in recorder.sampling]
    assert phases == ["train", "validation", "validation end"] * 3
    for index, (_, weights) in enumerate(recorder.sampling):
        assert torch.allclose(weights, expected[index // 3], atol=1e-6), recorder.sampling[index][0]


def test_checkpoint_holds_the_average_as_its_state_dict(tmp_path):
    task = tiny_task(sample_every_n_epochs=0)
    batch = fixed_batch(4)
    recorder = WeightRecorder()
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0,
                            callbacks=[EMAWeightAveraging(decay=0.5), recorder])  # fmt: skip
    trainer.fit(task, loader(batch, 2))
    trainer.save_checkpoint(tmp_path / "ema.ckpt")
    restored = tiny_task()
    state = torch.load(tmp_path / "ema.ckpt", weights_only=False)["state_dict"]
    restored.load_state_dict(state)
    w1, w2 = recorder.live
    assert torch.allclose(flat(restored.network), 0.5 * w1 + 0.5 * w2, atol=1e-6)


def test_sample_images_shape_range_and_seed():
    task = tiny_task(sample_batch_size=3)
    task.eval()
    images = task.sample_images(7, generator=seeded(0))
    assert images.shape == (7, 1, 8, 8)
    assert images.min() >= 0
    assert images.max() <= 1
    assert torch.equal(images, task.sample_images(7, generator=seeded(0)))
    assert not torch.equal(images, task.sample_images(7, generator=seeded(1)))
    assert task.network.training is False


def test_sample_images_of_a_conditional_model_cycles_the_classes():
    spy = LabelSpy()
    task = tiny_task(network=spy, sampler="ddpm", guidance_scale=2.0, sample_batch_size=4)
    images = task.sample_images(5)
    assert images.shape == (5, 1, 8, 8)
    # Guidance: the conditional and the "no class" (3) halves in one call per step, 50 steps,
    # two chunks.
    assert len(spy.labels) == 2 * 50
    assert spy.labels[0].tolist() == [0, 1, 2, 0, 3, 3, 3, 3]
    assert spy.labels[-1].tolist() == [1, 3]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_sampler_choice(sampler):
    spy = LabelSpy()
    tiny_task(network=spy, sampler=sampler, sampling_steps=5).sample_images(2)
    assert len(spy.labels) == (50 if sampler == "ddpm" else 5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampling_steps": 51}, "sampling_steps=51 exceeds num_timesteps=50"),
        ({"cond_drop_prob": 1.0}, "cond_drop_prob"),
        ({"num_samples": 0}, "num_samples must be >= 1"),
        ({"network": nn.Linear(2, 2)}, "Linear has no in_channels or image_size"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(LitlabError, match=message):
        tiny_task(**options)


def test_data_outside_minus_one_one_is_refused(data_root):
    task = tiny_task()
    datamodule = MNISTDataModule(data_dir=str(data_root), pixel_range="unit")
    with pytest.raises(LitlabError, match="pixel_range: symmetric"):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=datamodule)


@pytest.mark.parametrize(("world_size", "num_chunks", "batches"), [(1, 5, 5), (2, 7, 4), (3, 7, 1)])
def test_predict_chunks_cover_every_chunk_once_across_ranks(world_size, num_chunks, batches):
    per_rank = math.ceil(num_chunks / world_size)
    chunks_per_batch = math.ceil(per_rank / batches)
    drawn = [
        chunk
        for rank in range(world_size)
        for batch_idx in range(batches)
        for chunk in predict_chunks(batch_idx, chunks_per_batch, rank, world_size, num_chunks)
    ]
    assert sorted(drawn) == list(range(num_chunks))
    if world_size == 1:
        assert predict_chunks(2, 1, 0, 1, num_chunks) == [2]
