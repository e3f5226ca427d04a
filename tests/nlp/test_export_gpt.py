"""`litlab export` of the character GPT: token ids (batch, time) in, logits out, with batch and
sequence length dynamic up to the block size, and the vocabulary in the sidecar."""

import json
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch

from litlab.app.cli import main
from litlab.nlp.tasks.language_model import LanguageModel

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE_GPT = str(REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt.yaml")
BLOCK_SIZE = 16
TINY_GPT = [
    "--model.network.init_args.num_layers", "1",
    "--model.network.init_args.num_heads", "2",
    "--model.network.init_args.embed_dim", "16",
    "--model.network.init_args.block_size", str(BLOCK_SIZE),
    "--data.init_args.block_size", str(BLOCK_SIZE),
    "--data.init_args.samples_per_epoch", "24",
    "--trainer.max_steps", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.logger", "false",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.fixture
def trained_gpt(monkeypatch, in_tmp_dir, data_root):
    """A tiny GPT fitted for two steps by `litlab fit`, and its checkpoint."""
    monkeypatch.setattr(sys, "argv", ["litlab"])
    main(["fit", "-c", SHAKESPEARE_GPT, *TINY_GPT])
    (checkpoint,) = in_tmp_dir.glob("runs/shakespeare_char_gpt/*/checkpoints/best.ckpt")
    return checkpoint


def test_gpt_exports_to_onnx_and_torchscript_with_dynamic_batch_and_time(trained_gpt):
    reference = LanguageModel.load_from_checkpoint(trained_gpt, weights_only=False).eval()
    ckpt = ["--ckpt", "best", "--experiment", "shakespeare_char_gpt"]
    main(["export", *ckpt, "--format", "onnx"])
    main(["export", *ckpt, "--format", "torchscript"])

    session = onnxruntime.InferenceSession(
        str(trained_gpt.with_suffix(".onnx")), providers=["CPUExecutionProvider"]
    )
    scripted = torch.jit.load(str(trained_gpt.with_suffix(".pt")))
    torch.manual_seed(0)
    for batch_size, length in ((1, BLOCK_SIZE), (3, 5)):
        ids = torch.randint(0, 65, (batch_size, length))
        with torch.no_grad():
            expected = reference.network(ids)
        (logits,) = session.run(None, {"token_ids": ids.numpy()})
        torch.testing.assert_close(torch.from_numpy(logits), expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(scripted(ids), expected)

    sidecar = json.loads(trained_gpt.with_suffix(".onnx.json").read_text())
    assert sidecar["inputs"] == [
        {"name": "token_ids", "shape": ["batch", "time"], "dtype": "int64"}
    ]
    assert sidecar["outputs"] == [
        {"name": "logits", "shape": ["batch", "time", 65], "dtype": "float32"}
    ]
    assert sidecar["dynamic_axes"] == {"batch": {"max": None}, "time": {"max": BLOCK_SIZE}}
    assert sidecar["vocabulary"] == reference.vocabulary.chars
    assert len(sidecar["vocabulary"]) == 65
    checked_lengths = {check["inputs"]["token_ids"][1] for check in sidecar["validation"]["checks"]}
    assert {1, BLOCK_SIZE} <= checked_lengths
