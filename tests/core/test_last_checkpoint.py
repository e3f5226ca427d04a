"""LastCheckpoint: last.ckpt holds the latest training state, not a copy of the best."""

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from worse_every_validation import WorseEveryValidation, loader

from litlab.core.callbacks import LastCheckpoint


def fit(tmp_path, **trainer_options):
    checkpoints = tmp_path / "checkpoints"
    best = ModelCheckpoint(checkpoints, filename="best", monitor="val/loss", save_top_k=1)
    trainer = Trainer(
        callbacks=[best, LastCheckpoint(checkpoints)],
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_options,
    )
    trainer.fit(WorseEveryValidation(), loader(), loader())
    return trainer, checkpoints


def saved_step(path):
    return torch.load(path, weights_only=False)["global_step"]


def test_last_is_the_final_state_when_the_best_came_early(tmp_path):
    trainer, checkpoints = fit(tmp_path, max_epochs=3)
    assert saved_step(checkpoints / "best.ckpt") == 4
    assert saved_step(checkpoints / "last.ckpt") == trainer.global_step == 12
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_last_is_saved_when_training_stops_between_validations(tmp_path):
    trainer, checkpoints = fit(tmp_path, max_steps=6, val_check_interval=4)
    assert saved_step(checkpoints / "last.ckpt") == trainer.global_step == 6


def test_last_is_written_after_validations_inside_an_epoch(tmp_path):
    trainer, checkpoints = fit(tmp_path, max_epochs=1, val_check_interval=2)
    assert saved_step(checkpoints / "last.ckpt") == 4
    model = WorseEveryValidation()
    model.load_state_dict(torch.load(checkpoints / "last.ckpt", weights_only=False)["state_dict"])
    torch.testing.assert_close(model.layer.weight, trainer.lightning_module.layer.weight)
