"""NonFiniteLossGuard: a NaN loss stops training before it reaches the weights, or its batch
is skipped and counted."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.callbacks import LastCheckpoint, NonFiniteLossGuard
from litlab.core.callbacks.non_finite_loss_guard import SKIPPED_METRIC, NonFiniteLossError
from litlab.core.errors import LitlabError

BATCHES_PER_EPOCH = 4


class Regression(LightningModule):
    """A linear regression whose loss is NaN at the global steps in ``nan_at``."""

    def __init__(self, nan_at: set[int]) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(2, 1)
        self.nan_at = nan_at

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = (self.layer(x) - y).pow(2).mean()
        # Through the graph, so that the gradients are NaN too.
        return loss * float("nan") if self.global_step in self.nan_at else loss

    def train_dataloader(self):
        x = torch.randn(2 * BATCHES_PER_EPOCH, 2, generator=torch.Generator().manual_seed(1))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=2)

    def configure_optimizers(self):
        # Momentum and weight decay would move the weights even with a zero gradient.
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1)


class WeightsAtEachStep(Callback):
    """The weights before each training batch, by global step."""

    def __init__(self) -> None:
        self.before: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[trainer.global_step] = pl_module.layer.weight.detach().clone()


def fit(tmp_path, guard: NonFiniteLossGuard, nan_at: set[int], **options):
    weights = WeightsAtEachStep()
    model = Regression(nan_at)
    trainer = Trainer(
        callbacks=[LastCheckpoint(tmp_path / "checkpoints"), guard, weights],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )
    trainer.fit(model)
    return trainer, model, weights


def test_stop_names_the_step_and_the_last_checkpoint_and_keeps_the_weights(tmp_path):
    weights = WeightsAtEachStep()
    model = Regression(nan_at={5})
    trainer = Trainer(
        callbacks=[LastCheckpoint(tmp_path / "checkpoints"), NonFiniteLossGuard(), weights],
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit(model)
    message = str(info.value)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert "the training loss is NaN at global step 5 (epoch 1, batch 1)" in message
    assert f"The last good checkpoint is {last}." in message
    torch.testing.assert_close(model.layer.weight, weights.before[5], rtol=0, atol=0)
    # last.ckpt is the end of epoch 0, not overwritten since.
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == BATCHES_PER_EPOCH
    torch.testing.assert_close(saved["state_dict"]["layer.weight"], weights.before[4])


def test_stop_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written before it"):
        fit(tmp_path, NonFiniteLossGuard(), {2}, max_epochs=1)


def test_skip_counts_and_leaves_the_weights_of_bad_batches_alone(tmp_path):
    guard = NonFiniteLossGuard(action="skip", max_skips=5)
    trainer, model, weights = fit(tmp_path, guard, {1, 2, 6}, max_epochs=2)
    assert trainer.global_step == 2 * BATCHES_PER_EPOCH
    assert guard.skipped == 3
    assert trainer.callback_metrics[SKIPPED_METRIC].item() == 3
    assert all(p.isfinite().all() for p in model.parameters())
    # Steps 1, 2 and 6 changed nothing; the good steps around them did.
    torch.testing.assert_close(weights.before[1], weights.before[3], rtol=0, atol=0)
    torch.testing.assert_close(weights.before[6], weights.before[7], rtol=0, atol=0)
    assert not torch.equal(weights.before[0], weights.before[1])
    assert not torch.equal(weights.before[3], weights.before[4])


def test_skip_stops_after_max_skips(tmp_path):
    guard = NonFiniteLossGuard(action="skip", max_skips=1)
    with pytest.raises(NonFiniteLossError) as info:
        fit(tmp_path, guard, {1, 2}, max_epochs=1)
    assert "2 batches had a NaN or infinite loss, more than max_skips=1" in str(info.value)
    assert "global step 2 (epoch 0, batch 2)" in str(info.value)


def test_no_checkpoint_of_non_finite_weights(tmp_path):
    trainer, model, _ = fit(tmp_path, NonFiniteLossGuard(), set(), max_steps=1)
    with torch.no_grad():
        model.layer.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"weights are not finite .*e\.g\. layer\.weight"):
        trainer.save_checkpoint(tmp_path / "broken.ckpt")
    assert not (tmp_path / "broken.ckpt").exists()


@pytest.mark.parametrize(
    ("options", "named"), [({"action": "halt"}, "action"), ({"max_skips": -1}, "max_skips")]
)
def test_bad_options(options, named):
    with pytest.raises(LitlabError, match=named):
        NonFiniteLossGuard(**options)
