"""CausalLanguageModel: token-weighted perplexity, trainable-only checkpoints of LoRA runs and
their exported adapter folders, resuming, loading errors, generation and the full-model
export."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from peft import LoraConfig
from tiny_causal_lm import TINY_TEXT, tiny_gpt2_config, write_tiny_base
from transformers import AutoModelForCausalLM, AutoTokenizer

from litlab.app.cli import main
from litlab.core.errors import LitlabError
from litlab.nlp.callbacks.hf_export import HFExport
from litlab.nlp.data.causal_lm import CausalLMDataModule
from litlab.nlp.models.hf_causal_lm import HFCausalLM
from litlab.nlp.tasks.causal_lm import CausalLanguageModel


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    return write_tiny_base(root / "model", root / "bpe")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TINY_TEXT)
    return path


def lora(r: int = 4) -> LoraConfig:
    return LoraConfig(
        r=r, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True
    )


def datamodule(tmp_path, text_file, tokenizer, **options) -> CausalLMDataModule:
    options = {"block_size": 16, "batch_size": 8, "cache_dir": str(tmp_path / "cache"), **options}
    return CausalLMDataModule(train_files=str(text_file), tokenizer=str(tokenizer), **options)


def trainer(tmp_path, **options) -> Trainer:
    options = {
        "default_root_dir": tmp_path,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **options,
    }
    return Trainer(accelerator="cpu", **options)


def test_val_perplexity_is_token_weighted_over_the_whole_set(tmp_path, base_dir):
    # Rows of very different lengths, unpacked, in batches of unequal token counts: a mean of
    # per-batch losses would differ from the per-token mean.
    path = tmp_path / "rows.jsonl"
    texts = ["Speak.", "First Citizen:\nYou are all resolved rather to die than to famish?", "All:"]
    path.write_text("".join(f'{{"text": {text!r}}}\n'.replace("'", '"') for text in texts * 3))
    data = CausalLMDataModule(
        train_files=str(path), val_files=str(path), tokenizer=str(base_dir), pack=False,
        block_size=32, batch_size=2, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    task = CausalLanguageModel(HFCausalLM(pretrained=str(base_dir)))
    metrics = trainer(tmp_path).validate(task, data, verbose=False)[0]

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    task.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for text in texts * 3:
            ids = torch.tensor([tokenizer(text).input_ids])
            logits = task.network(ids)
            nll += F.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum").item()
            count += ids.shape[1] - 1
    assert metrics["val/loss"] == pytest.approx(nll / count, rel=1e-5)
    assert metrics["val/ppl"] == pytest.approx(math.exp(nll / count), rel=1e-5)


def fit_lora(tmp_path, text_file, base_dir, max_steps=2, r=4):
    task = CausalLanguageModel(HFCausalLM(pretrained=str(base_dir), adapter=lora(r)), lr=1e-2)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="best",
                                 monitor="val/loss", save_last=True)  # fmt: skip
    # One batch per epoch, so that every step ends with a validation and a checkpoint.
    trainer(tmp_path, max_steps=max_steps, callbacks=[checkpoint]).fit(
        task, datamodule(tmp_path, text_file, base_dir, batch_size=64)
    )
    return task, tmp_path / "checkpoints"


def test_lora_checkpoint_holds_only_trainable_tensors_and_an_adapter_folder(
    tmp_path, text_file, base_dir
):
    task, checkpoints = fit_lora(tmp_path, text_file, base_dir)
    trainable = {name for name, p in task.named_parameters() if p.requires_grad}
    for name in ("best", "last"):
        state = torch.load(checkpoints / f"{name}.ckpt", weights_only=False)["state_dict"]
        assert set(state) == trainable
        assert all("lora_" in key for key in state)
        adapter = checkpoints / f"{name}-adapter"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {
            path.name for path in adapter.iterdir()
        }
    # The exported adapter is the trained one: loaded on the base, it gives the task's logits.
    x = torch.randint(1, 300, (2, 10))
    reloaded = HFCausalLM(pretrained=str(base_dir), adapter_path=str(checkpoints / "last-adapter"))
    task.eval()
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(x), task.network(x))


def test_loading_a_lora_checkpoint_restores_the_adapter(tmp_path, text_file, base_dir):
    task, checkpoints = fit_lora(tmp_path, text_file, base_dir)
    fresh = CausalLanguageModel(HFCausalLM(pretrained=str(base_dir), adapter=lora()))
    trainer(tmp_path).validate(
        fresh, datamodule(tmp_path, text_file, base_dir), ckpt_path=checkpoints / "last.ckpt",
        verbose=False,
    )  # fmt: skip
    assert all(
        torch.equal(a, b) for a, b in zip(fresh.parameters(), task.parameters(), strict=True)
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda base: HFCausalLM(pretrained=base, adapter=lora(r=2)), "of another shape"),
        (lambda base: HFCausalLM(pretrained=base), "has no adapter"),
    ],
    ids=["other-rank", "no-adapter"],
)
def test_a_mismatched_checkpoint_is_named_in_a_clear_error(
    tmp_path, text_file, base_dir, model, message
):
    _, checkpoints = fit_lora(tmp_path, text_file, base_dir)
    task = CausalLanguageModel(model(str(base_dir)))
    path = checkpoints / "last.ckpt"
    with pytest.raises(LitlabError, match=message) as error:
        trainer(tmp_path).validate(
            task, datamodule(tmp_path, text_file, base_dir), ckpt_path=path, verbose=False
        )
    assert str(path) in str(error.value)


LORA_CONFIG = """
model:
  class_path: litlab.nlp.tasks.causal_lm.CausalLanguageModel
  init_args:
    network:
      class_path: litlab.nlp.models.hf_causal_lm.HFCausalLM
      init_args:
        pretrained: {base}
        adapter:
          class_path: peft.LoraConfig
          init_args: {{r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [c_attn],
                      fan_in_fan_out: true}}
    lr: 0.01
data:
  class_path: litlab.nlp.data.causal_lm.CausalLMDataModule
  init_args:
    train_files: {text}
    tokenizer: {base}
    block_size: 16
    batch_size: 64  # one batch per epoch: the steps do not depend on the shuffling RNG
    cache_dir: {cache}
trainer:
  logger: false
  enable_progress_bar: false
"""


def write_lora_config(tmp_path, text_file, base_dir) -> Path:
    path = tmp_path / "lora.yaml"
    path.write_text(LORA_CONFIG.format(base=base_dir, text=text_file, cache=tmp_path / "cache"))
    return path


def last_checkpoint(runs: Path) -> dict:
    return torch.load(sorted(runs.glob("*/checkpoints/last.ckpt"))[-1], weights_only=False)


def test_a_lora_run_resumes_from_its_last_checkpoint(tmp_path, text_file, base_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["litlab"])
    config = str(write_lora_config(tmp_path, text_file, base_dir))
    main(["fit", "-c", config, "--experiment", "lora", "--trainer.max_steps", "2"])
    first = last_checkpoint(tmp_path / "runs" / "lora")
    assert first["global_step"] == 2
    main(["fit", "-c", config, "--experiment", "lora", "--trainer.max_steps", "4",
          "--ckpt_path", "last"])  # fmt: skip
    paths = list((tmp_path / "runs" / "lora").glob("*/checkpoints/last.ckpt"))
    assert len(paths) == 1  # the resumed run goes on in its own run folder
    resumed = torch.load(paths[0], weights_only=False)
    assert resumed["global_step"] == 4
    # The same four steps in one run end with the same adapter weights: the resumed run
    # restored the weights, the optimizer state and the schedule.
    main(["fit", "-c", config, "--experiment", "straight", "--trainer.max_steps", "4"])
    straight = last_checkpoint(tmp_path / "runs" / "straight")
    assert set(resumed["state_dict"]) == set(straight["state_dict"])
    for name, value in straight["state_dict"].items():
        assert torch.allclose(resumed["state_dict"][name], value, atol=1e-6), name
    for run_checkpoints in (tmp_path / "runs" / "lora").glob("*/checkpoints"):
        assert (run_checkpoints / "last-adapter" / "adapter_config.json").is_file()


def test_predict_writes_generations_for_the_prompts(tmp_path, text_file, base_dir):
    task = CausalLanguageModel(
        HFCausalLM(pretrained=str(base_dir)), max_new_tokens=5, do_sample=False
    )
    data = datamodule(tmp_path, text_file, base_dir, prompts=["All:", "First Citizen:\nBefore"])
    output = trainer(tmp_path).predict(task, data)
    assert [len(batch["generation"]) for batch in output] == [2]
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [row["prompt"] for row in rows] == ["All:", "First Citizen:\nBefore"]
    # Greedy: each prompt continues as it would alone.
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    ids = torch.tensor([tokenizer("All:").input_ids])
    alone = task.generate(ids, torch.ones_like(ids))
    assert rows[0]["generation"] == tokenizer.decode(alone[0, ids.shape[1] :])


def test_full_training_exports_and_publishes_a_plain_model(tmp_path, text_file):
    task = CausalLanguageModel(HFCausalLM(config=tiny_gpt2_config()), lr=1e-2)
    data = CausalLMDataModule(
        train_files=str(text_file), bpe_vocab_size=300, block_size=16, batch_size=64,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="best",
                                 monitor="val/loss", save_last=True)  # fmt: skip
    publish = tmp_path / "published"
    callbacks = [checkpoint, HFExport(publish_dir=str(publish))]
    trainer(tmp_path, max_steps=3, callbacks=callbacks).fit(task, data)
    # Full fine-tuning: the checkpoint holds every tensor.
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert set(state) == set(task.state_dict())
    for folder in (tmp_path / "checkpoints" / "last-hf", publish):
        files = {path.name for path in folder.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    model = AutoModelForCausalLM.from_pretrained(publish).eval()
    tokenizer = AutoTokenizer.from_pretrained(publish)
    assert tokenizer.get_vocab() == data.tokenizer.get_vocab()
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    # The published model is the best checkpoint's.
    for name, value in model.state_dict().items():
        assert torch.equal(value, best[f"network.model.{name}"]), name


def test_a_block_longer_than_the_context_is_refused(tmp_path, text_file, base_dir):
    task = CausalLanguageModel(HFCausalLM(pretrained=str(base_dir)))
    text_file.write_text(TINY_TEXT * 4)
    data = datamodule(tmp_path, text_file, base_dir, block_size=256, val_files=str(text_file))
    with pytest.raises(LitlabError, match="longer than the model's context"):
        trainer(tmp_path, max_steps=1).fit(task, data)
