"""litlab (Lightning) against a plain PyTorch training loop, same model, data and batch size.

Three loops per case: a hand-written PyTorch loop, a bare LightningModule (cross-entropy and
SGD, nothing else: Lightning's own cost) and litlab's ImageClassifier (Lightning plus litlab's
metrics and logging). They run alternately (the order reversed every other round), several
rounds each, from the same seed: the same initial weights, the same batches in the same order.
Printed: images/s of each (median over rounds), litlab's ratio to the plain loop, and the final
training losses, which must agree to 5 decimals, as in Lightning's own parity benchmark.
Timing covers the training loop only (Lightning: from ``on_train_start`` to ``on_train_end``),
data loading included, Trainer construction excluded.

    uv run python benchmarks/vision_throughput.py             # all cases
    uv run python benchmarks/vision_throughput.py --cases mnist_cnn --rounds 5
    uv run python benchmarks/vision_throughput.py --accelerator cuda    # on a GPU

MNIST comes from $LITLAB_DATA (default ./data). CIFAR-10 is read from there when present;
otherwise random pixels are written in CIFAR-10's own file layout to a temporary folder (the
speed of a step does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import nn
from torchvision import datasets

from lightning_timing import alternate_rounds, fit_timed
from litlab.vision.data.cifar10 import CIFAR10DataModule
from litlab.vision.data.image_classification import ImageClassificationDataModule
from litlab.vision.data.mnist import MNISTDataModule
from litlab.vision.models.cifar_resnet import CIFARResNet
from litlab.vision.models.cnn import SmallCNN
from litlab.vision.tasks.classification import ImageClassifier

SEED = 1234


@dataclass
class Case:
    model: Callable[[], nn.Module]
    datamodule: Callable[[bool], ImageClassificationDataModule]
    steps: int
    lr: float = 0.01


@functools.cache
def cifar_root(data_root: str | None) -> str:
    root = Path(data_root or os.environ.get("LITLAB_DATA", "data"))
    if (root / "cifar-10-batches-py" / "data_batch_1").is_file():
        return str(root)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
    from fake_datasets import write_fake_cifar10

    fake = tempfile.mkdtemp(prefix="litlab-cifar-random-")
    checksums = write_fake_cifar10(Path(fake), n_per_batch=2000, n_test=100)
    # torchvision checks the files against the real release's MD5s.
    cifar = datasets.CIFAR10
    cifar.train_list = [[name, checksums[name]] for name, _ in cifar.train_list]
    cifar.test_list = [[name, checksums[name]] for name, _ in cifar.test_list]
    cifar.meta = {**cifar.meta, "md5": checksums[cifar.meta["filename"]]}
    return fake


def cases(data_root: str | None, batch_size: int) -> dict[str, Case]:
    common = {"batch_size": batch_size, "num_workers": 0, "shuffle_seed": SEED}
    return {
        "mnist_cnn": Case(
            model=SmallCNN,
            datamodule=lambda in_memory: MNISTDataModule(
                data_dir=data_root, in_memory=in_memory, **common
            ),
            steps=150,
        ),
        "cifar10_resnet20": Case(
            model=partial(CIFARResNet, depth=20),
            datamodule=lambda in_memory: CIFAR10DataModule(
                data_dir=cifar_root(data_root),
                val_size=1000,
                in_memory=in_memory,
                random_crop_padding=0,
                horizontal_flip=False,
                **common,
            ),
            steps=40,
        ),
    }


def plain_loop(case: Case, in_memory: bool, accelerator: str) -> tuple[float, float]:
    """Images per second and final loss of a hand-written loop."""
    device = torch.device(accelerator)
    datamodule = case.datamodule(in_memory)
    datamodule.setup("fit")
    # The in-memory loader puts its tensors on the trainer's device; a stand-in trainer tells
    # it which device, so this loop reads the very same batches as the Lightning ones.
    datamodule.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=device), global_rank=0, world_size=1
    )
    loader = datamodule.train_dataloader()
    torch.manual_seed(SEED)
    model = case.model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=case.lr, momentum=0.9)
    model.train()
    steps, images_seen, epoch = 0, 0, 0
    start = time.perf_counter()
    while steps < case.steps:
        loader.sampler.set_epoch(epoch)
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            images_seen += len(images)
            if steps == case.steps:
                break
        epoch += 1
    loss = loss.item()  # waits for the GPU's queued work
    elapsed = time.perf_counter() - start
    return images_seen / elapsed, loss


class BareModule(LightningModule):
    """Cross-entropy and SGD and nothing else: what Lightning alone costs."""

    def __init__(self, model: nn.Module, lr: float) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def training_step(self, batch, batch_idx):
        images, labels = batch
        return F.cross_entropy(self.model(images), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def bare_lightning_loop(case: Case, in_memory: bool, accelerator: str) -> tuple[float, float]:
    """Images per second and final loss of a bare LightningModule."""
    datamodule = case.datamodule(in_memory)
    torch.manual_seed(SEED)
    return fit_timed(
        BareModule(case.model(), case.lr), datamodule, case.steps, accelerator=accelerator
    )


def litlab_loop(case: Case, in_memory: bool, accelerator: str) -> tuple[float, float]:
    """Images per second and final loss of the same training through litlab's task."""
    datamodule = case.datamodule(in_memory)
    torch.manual_seed(SEED)
    task = ImageClassifier(
        case.model(),
        num_classes=10,
        lr=case.lr,
        optimizer=partial(torch.optim.SGD, momentum=0.9),
        report_worst=0,
    )
    return fit_timed(task, datamodule, case.steps, accelerator=accelerator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["mnist_cnn", "cifar10_resnet20"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--accelerator", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    # The table is the output; Lightning's per-fit banner would bury it.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.set_num_threads(os.cpu_count() or 1)
    all_cases = cases(args.data_dir, args.batch_size)
    device = torch.cuda.get_device_name() if args.accelerator == "cuda" else "CPU"
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads,"
        f" batch {args.batch_size}"
    )
    header = (
        f"{'case':18} {'in memory':9} {'plain img/s':>11} {'bare PL img/s':>13}"
        f" {'litlab img/s':>12} {'litlab/plain':>12}"
        f" {'losses (plain, bare, litlab)':>30} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    loops = {"plain": plain_loop, "bare": bare_lightning_loop, "litlab": litlab_loop}
    for name in args.cases:
        case = all_cases[name]
        for in_memory in (False, True):
            results = alternate_rounds(
                {
                    name: partial(loop, case, in_memory, args.accelerator)
                    for name, loop in loops.items()
                },
                args.rounds,
            )
            speed = {loop: statistics.median(s for s, _ in runs) for loop, runs in results.items()}
            losses = [results[loop][-1][1] for loop in loops]
            same = len({round(loss, 5) for loss in losses}) == 1
            print(
                f"{name:18} {in_memory!s:9} {speed['plain']:11.0f} {speed['bare']:13.0f}"
                f" {speed['litlab']:12.0f} {speed['litlab'] / speed['plain']:12.3f}"
                f" {', '.join(f'{loss:.5f}' for loss in losses):>30} {same!s:>5}"
            )


if __name__ == "__main__":
    main()
