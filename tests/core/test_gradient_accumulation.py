"""Gradient accumulation: N micro-batches of B samples make the same optimizer step as one batch
of N * B (Lightning divides each micro-batch's mean loss by N), through a litlab Task's
optimizer configuration."""

import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.task import Task

MICRO_BATCH = 4
ACCUMULATE = 3
STEPS = 2
LR = 0.5


def sgd(params, lr, weight_decay):
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)


class Regression(Task):
    def __init__(self) -> None:
        super().__init__(lr=LR, weight_decay=0.01, optimizer=sgd)
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)  # a mean over the batch


def data() -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS * ACCUMULATE * MICRO_BATCH, 5, generator=generator)
    return TensorDataset(x, x.sum(dim=1, keepdim=True).sin())


def fit(batch_size: int, accumulate: int) -> Regression:
    task = Regression()
    Trainer(
        accelerator="cpu",
        max_steps=STEPS,
        accumulate_grad_batches=accumulate,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(task, DataLoader(data(), batch_size=batch_size))
    return task


def by_hand() -> Regression:
    """The same steps with plain PyTorch: each on the mean loss over its N * B samples."""
    task = Regression()
    optimizer = task.configure_optimizers()
    x, y = data().tensors
    for step in range(STEPS):
        rows = slice(step * ACCUMULATE * MICRO_BATCH, (step + 1) * ACCUMULATE * MICRO_BATCH)
        optimizer.zero_grad()
        F.mse_loss(task.net(x[rows]), y[rows]).backward()
        optimizer.step()
    return task


def test_accumulated_micro_batches_make_the_step_of_one_big_batch():
    accumulated = fit(MICRO_BATCH, ACCUMULATE)
    big = fit(ACCUMULATE * MICRO_BATCH, 1)
    reference = by_hand()
    start = Regression()
    for name, expected in reference.state_dict().items():
        assert torch.allclose(accumulated.state_dict()[name], expected, atol=1e-6), name
        assert torch.allclose(big.state_dict()[name], expected, atol=1e-6), name
        # The steps did move the weights (so the comparison is not of untouched ones).
        assert not torch.allclose(expected, start.state_dict()[name], atol=1e-3), name


def test_without_the_division_by_n_the_step_would_differ():
    # The summed (not averaged) micro-batch losses give N times the gradient: far from the
    # accumulated run, which is why Lightning's division by N matters.
    accumulated = fit(MICRO_BATCH, ACCUMULATE)
    task = Regression()
    optimizer = task.configure_optimizers()
    x, y = data().tensors
    for step in range(STEPS):
        optimizer.zero_grad()
        for micro in range(ACCUMULATE):
            start = (step * ACCUMULATE + micro) * MICRO_BATCH
            rows = slice(start, start + MICRO_BATCH)
            F.mse_loss(task.net(x[rows]), y[rows]).backward()
        optimizer.step()
    difference = max(
        (accumulated.state_dict()[name] - tensor).abs().max().item()
        for name, tensor in task.state_dict().items()
    )
    assert difference > 1e-2
