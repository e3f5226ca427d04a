import math
from functools import partial

import pytest
import torch
from lightning.pytorch import Trainer

from litlab.core.schedulers import OneCycleLR, WarmupCosineLR
from litlab.core.task import Task


def lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        values.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_warmup_cosine_matches_the_formula():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = lrs(WarmupCosineLR(optimizer, warmup_steps=4, total_steps=20, min_lr_ratio=0.1), 20)
    for step, lr in enumerate(schedule):
        if step < 4:
            expected = 0.1 * (step + 1) / 4
        else:
            progress = (step - 4) / 16
            expected = 0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        assert lr == pytest.approx(expected)
    assert max(schedule) == pytest.approx(0.1)


def test_warmup_longer_than_training_warms_up_over_the_whole_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = lrs(WarmupCosineLR(optimizer, warmup_steps=30, total_steps=4), 4)
    assert schedule == pytest.approx([0.025, 0.05, 0.075, 0.1])
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosineLR(optimizer, warmup_steps=-1, total_steps=4)


class TinyTask(Task):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()


@pytest.mark.parametrize(
    ("scheduler", "interval", "expected_total"),
    [
        (partial(WarmupCosineLR, warmup_steps=2), "step", 3 * 5),
        (partial(WarmupCosineLR, warmup_steps=1), "epoch", 3),
        (OneCycleLR, "step", 3 * 5),
    ],
)
def test_total_steps_come_from_the_trainer(scheduler, interval, expected_total):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), 4)
    task = TinyTask(lr=0.05, lr_scheduler=scheduler, lr_scheduler_interval=interval)
    trainer = Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(task, data)
    built = trainer.lr_scheduler_configs[0].scheduler
    assert built.total_steps == expected_total
    if isinstance(built, OneCycleLR):
        # The peak is the task's lr, in every group.
        assert [g["max_lr"] for g in built.optimizer.param_groups] == [0.05, 0.05]


def test_warmup_cosine_floor_is_a_fraction_of_each_groups_peak():
    # Why it is torch's LambdaLR with the formula rather than SequentialLR(LinearLR,
    # CosineAnnealingLR): CosineAnnealingLR's eta_min is one absolute LR for every group.
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1},
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01},  # an lr_scale of 0.1
    ]
    optimizer = torch.optim.SGD(groups)
    scheduler = WarmupCosineLR(optimizer, warmup_steps=2, total_steps=6, min_lr_ratio=0.2)
    lrs(scheduler, 6)
    assert scheduler.get_last_lr() == pytest.approx([0.02, 0.002])


def test_warmup_cosine_resumes_from_its_state_dict():
    def build(total_steps):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return WarmupCosineLR(optimizer, warmup_steps=3, total_steps=total_steps, min_lr_ratio=0.1)

    uninterrupted = lrs(build(12), 12)
    first = build(12)
    lrs(first, 5)
    state = {"optimizer": first.optimizer.state_dict(), "scheduler": first.state_dict()}
    # A resume with a longer run keeps the schedule length the first run filled in.
    resumed = build(40)
    resumed.optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert resumed.total_steps == 12
    assert lrs(resumed, 7) == uninterrupted[5:]
