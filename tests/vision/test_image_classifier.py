"""ImageClassifier (and the Task base's optimizer handling) with tiny models."""

from __future__ import annotations

import functools
import logging

import lightning
import pytest
import torch
import torch.nn.functional as F
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab.vision.tasks.classification import ImageClassifier

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*cannot be pickled:UserWarning",
    "ignore:.*isinstance\\(treespec, LeafSpec\\).*",
    "ignore:.*but have no `val_dataloader`:UserWarning",
)


def _tiny_model(num_features: int = 4, num_classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(num_features, num_classes))


def _trainer(**kwargs) -> lightning.Trainer:
    return lightning.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def _separable_data(n: int = 96, num_classes: int = 3) -> TensorDataset:
    """1x2x2 images; class c has pixel c near 3 and the others near 0 (noise in [-0.5, 0.5]),
    so the identity map on the first pixels separates the classes exactly."""
    labels = torch.arange(n) % num_classes
    x = 3 * F.one_hot(labels, 4).float() + (torch.rand(n, 4) - 0.5)
    return TensorDataset(x.view(n, 1, 2, 2), labels)


def _smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float):
    """(1 - eps) * NLL of the true class + eps * mean NLL over all classes, averaged."""
    log_p = logits - logits.exp().sum(-1, keepdim=True).log()
    nll_true = -log_p[torch.arange(len(labels)), labels]
    nll_uniform = -log_p.mean(-1)
    return ((1 - eps) * nll_true + eps * nll_uniform).mean()


class _EpochMetrics(lightning.Callback):
    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_monitor():
    assert ImageClassifier.monitor == "val/acc"
    assert ImageClassifier.monitor_mode == "max"


def test_logged_loss_is_smoothed_cross_entropy(in_tmp_dir):
    torch.manual_seed(0)
    task = ImageClassifier(_tiny_model(), num_classes=3, label_smoothing=0.1)
    x = torch.randn(8, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    with torch.no_grad():
        logits = task(x)
    by_hand = _smoothed_cross_entropy(logits, y, 0.1)
    torch.testing.assert_close(F.cross_entropy(logits, y, label_smoothing=0.1), by_hand)
    # Smoothing changes the loss: the test would not notice it being dropped otherwise.
    assert not torch.isclose(F.cross_entropy(logits, y), by_hand)

    (metrics,) = _trainer(default_root_dir=in_tmp_dir).validate(
        task, DataLoader(TensorDataset(x, y), batch_size=8), verbose=False
    )
    assert metrics["val/loss"] == pytest.approx(by_hand.item(), rel=1e-5)
    accuracy = (logits.argmax(-1) == y).float().mean().item()
    assert metrics["val/acc"] == pytest.approx(accuracy)


def test_fit_learns_separable_data(in_tmp_dir):
    torch.manual_seed(0)
    train, val = _separable_data(96), _separable_data(48)
    task = ImageClassifier(_tiny_model(), num_classes=3, label_smoothing=0.1, lr=0.05)
    history = _EpochMetrics()
    trainer = _trainer(default_root_dir=in_tmp_dir, max_epochs=8, callbacks=[history])
    trainer.fit(
        task,
        DataLoader(train, batch_size=16, shuffle=True),
        DataLoader(val, batch_size=16),
    )
    assert trainer.global_step == 8 * 6
    losses = [epoch["train/loss"] for epoch in history.history]
    assert len(losses) == 8
    assert losses[-1] < 0.5 * losses[0]
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(losses[-1])
    assert trainer.callback_metrics["val/acc"].item() == 1.0


def test_test_metrics_match_hand_computation(in_tmp_dir):
    torch.manual_seed(1)
    task = ImageClassifier(_tiny_model(num_classes=4), num_classes=4, label_smoothing=0.1)
    x, y = torch.randn(60, 1, 2, 2), torch.randint(0, 4, (60,))
    (metrics,) = _trainer(default_root_dir=in_tmp_dir).test(
        task, DataLoader(TensorDataset(x, y), batch_size=20), verbose=False
    )
    with torch.no_grad():
        logits = task(x)
    accuracy = (logits.argmax(-1) == y).float().mean().item()
    assert 0 < accuracy < 1  # a random model: not a trivial 0 or 1
    assert metrics["test/acc"] == pytest.approx(accuracy)
    expected_loss = _smoothed_cross_entropy(logits, y, 0.1).item()
    assert metrics["test/loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_configure_optimizers_uses_task_lr_and_weight_decay():
    task = ImageClassifier(
        _tiny_model(),
        num_classes=3,
        lr=0.05,
        weight_decay=0.01,
        optimizer=lambda p, **kw: torch.optim.SGD(p, momentum=0.9, **kw),
    )
    optimizer = task.configure_optimizers()
    assert type(optimizer) is torch.optim.SGD
    decayed, exempt = optimizer.param_groups
    assert decayed["lr"] == exempt["lr"] == 0.05
    assert decayed["momentum"] == exempt["momentum"] == 0.9
    # Weight matrices decay; biases (1-d) are exempt by default.
    assert decayed["weight_decay"] == 0.01
    assert exempt["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"])
    assert all(p.ndim == 1 for p in exempt["params"])
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in task.parameters())


def test_decay_norm_and_bias_puts_everything_in_one_group():
    task = ImageClassifier(
        _tiny_model(), num_classes=3, weight_decay=0.01, decay_norm_and_bias=True
    )
    (group,) = task.configure_optimizers().param_groups
    assert group["weight_decay"] == 0.01
    assert len(group["params"]) == len(list(task.parameters()))


def test_default_optimizer_is_adamw():
    task = ImageClassifier(_tiny_model(), num_classes=3, lr=3e-4, weight_decay=0.1)
    optimizer = task.configure_optimizers()
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.param_groups[0]["lr"] == 3e-4
    assert optimizer.param_groups[0]["weight_decay"] == 0.1


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_configure_optimizers_with_scheduler(interval):
    task = ImageClassifier(
        _tiny_model(),
        num_classes=3,
        lr=0.1,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        lr_scheduler_interval=interval,
    )
    config = task.configure_optimizers()
    assert set(config) == {"optimizer", "lr_scheduler"}
    assert type(config["optimizer"]) is torch.optim.AdamW
    scheduler = config["lr_scheduler"]["scheduler"]
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR
    assert scheduler.optimizer is config["optimizer"]
    assert config["lr_scheduler"]["interval"] == interval
    assert config["lr_scheduler"]["monitor"] == "val/acc"


@pytest.mark.parametrize(("interval", "halvings"), [("step", 2 * 3), ("epoch", 2)])
def test_scheduler_steps_at_interval(in_tmp_dir, interval, halvings):
    torch.manual_seed(0)
    task = ImageClassifier(
        _tiny_model(),
        num_classes=3,
        lr=0.1,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        lr_scheduler_interval=interval,
    )
    trainer = _trainer(default_root_dir=in_tmp_dir, max_epochs=2, limit_val_batches=0)
    trainer.fit(task, DataLoader(_separable_data(48), batch_size=16))  # 3 steps an epoch
    assert trainer.global_step == 6
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(0.1 * 0.5**halvings)


def test_predict_step_is_softmax_argmax():
    torch.manual_seed(0)
    task = ImageClassifier(_tiny_model(), num_classes=3).eval()
    x = torch.randn(10, 1, 2, 2)
    with torch.no_grad():
        probabilities = torch.softmax(task(x), dim=-1)
        from_tuple = task.predict_step((x, torch.zeros(10, dtype=torch.long)), 0)
        from_tensor = task.predict_step(x, 0)
    assert set(from_tuple) == {"id", "label", "probability"}
    assert set(from_tensor) == {"label", "probability"}
    for out in (from_tuple, from_tensor):
        torch.testing.assert_close(out["label"], probabilities.argmax(-1))
        torch.testing.assert_close(out["probability"], probabilities.max(-1).values)
        assert torch.all(out["probability"] >= 1 / 3)
        assert torch.all(out["probability"] <= 1)


def _optimizer_from_config(*args: str):
    """The optimizer callable exactly as LightningCLI/jsonargparse builds it from a config."""
    parser = ArgumentParser()
    parser.add_argument("--optimizer", type=OptimizerCallable)
    return parser.instantiate(parser.parse_args(["--optimizer=torch.optim.AdamW", *args])).optimizer


@pytest.mark.parametrize("name", ["lr", "weight_decay"])
def test_config_optimizer_lr_loses_to_the_task_with_a_warning(name, caplog):
    optimizer = _optimizer_from_config(f"--optimizer.{name}=0.5")
    task = ImageClassifier(_tiny_model(), num_classes=3, lr=0.02, optimizer=optimizer)
    with caplog.at_level(logging.WARNING, logger="litlab"):
        built = task.configure_optimizers()
    assert built.param_groups[0][name] == getattr(task, name)
    assert f"model.init_args.{name}" in caplog.text


def test_config_optimizer_with_defaults_is_accepted():
    optimizer = _optimizer_from_config("--optimizer.betas=[0.8,0.9]")
    task = ImageClassifier(_tiny_model(), num_classes=3, lr=0.02, optimizer=optimizer)
    built = task.configure_optimizers()
    assert type(built) is torch.optim.AdamW
    assert built.param_groups[0]["lr"] == 0.02
    assert built.param_groups[0]["betas"] == (0.8, 0.9)


def test_plain_partial_with_lr_warns(caplog):
    task = ImageClassifier(
        _tiny_model(), num_classes=3, optimizer=functools.partial(torch.optim.AdamW, lr=0.1)
    )
    with caplog.at_level(logging.WARNING, logger="litlab"):
        task.configure_optimizers()
    assert "optimizer.init_args.lr=0.1 is ignored" in caplog.text


def test_optimizer_class_switch_carrying_defaults_is_quiet(caplog):
    """jsonargparse carries AdamW's weight_decay=0.01 into SGD; an SGD config must still run."""
    optimizer = _optimizer_from_config("--optimizer=torch.optim.SGD", "--optimizer.momentum=0.9")
    task = ImageClassifier(_tiny_model(), num_classes=3, weight_decay=0.01, optimizer=optimizer)
    built = task.configure_optimizers()
    assert type(built) is torch.optim.SGD
    assert built.param_groups[0]["weight_decay"] == 0.01


def test_plain_partial_with_default_lr_is_accepted():
    optimizer = functools.partial(torch.optim.AdamW, lr=1e-3, betas=(0.8, 0.9))
    task = ImageClassifier(_tiny_model(), num_classes=3, lr=0.02, optimizer=optimizer)
    built = task.configure_optimizers()
    assert type(built) is torch.optim.AdamW
    assert built.param_groups[0]["lr"] == 0.02
    assert built.param_groups[0]["betas"] == (0.8, 0.9)
