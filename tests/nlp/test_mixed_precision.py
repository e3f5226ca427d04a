"""Mixed precision through Lightning's ``precision`` flag: the char GPT's forward runs in the low
precision (autocast), its weights stay float32, and training still lowers the loss.
``bf16-mixed`` runs on the CPU here; both mixed modes run on a GPU where there is one."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from litlab.nlp.data.char_text import CharTextDataModule
from litlab.nlp.models.gpt import GPT
from litlab.nlp.tasks.language_model import LanguageModel

TEXT = "to be, or not to be, that is the question.\n" * 60
STEPS = 20
NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.mark.parametrize(
    ("accelerator", "precision", "dtype"),
    [
        ("cpu", "bf16-mixed", torch.bfloat16),
        pytest.param("cuda", "bf16-mixed", torch.bfloat16, marks=NO_GPU),
        pytest.param("cuda", "16-mixed", torch.float16, marks=NO_GPU),
    ],
)
def test_mixed_precision_fit_runs_the_forward_in_low_precision(
    tmp_path, accelerator, precision, dtype
):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT)
    data = CharTextDataModule(
        str(text_file), block_size=16, batch_size=8, samples_per_epoch=8 * STEPS, shuffle_seed=0
    )
    torch.manual_seed(0)
    gpt = GPT(data.vocab_size, block_size=16, num_layers=1, num_heads=2, embed_dim=32)
    task = LanguageModel(gpt, lr=3e-3, weight_decay=0.0)

    seen: list[torch.dtype] = []

    def head_output(module, inputs, output):
        if module.training:
            seen.append(output.dtype)

    gpt.lm_head.register_forward_hook(head_output)
    recorder = LossRecorder()
    Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=STEPS,
        limit_val_batches=0,
        callbacks=[recorder],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(task, data)

    # Autocast ran the output head's matmul in the low precision, at every training step.
    assert seen == [dtype] * STEPS
    # The weights (and so the optimizer's update) stay float32.
    assert {p.dtype for p in task.parameters()} == {torch.float32}
    losses = torch.tensor(recorder.losses)
    assert len(losses) == STEPS
    assert torch.isfinite(losses).all()
    assert losses[-5:].mean() < 0.8 * losses[:5].mean()
