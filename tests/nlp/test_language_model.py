"""LanguageModel: the validation metrics, generation, and `litlab fit`/`litlab predict` on the
Tiny Shakespeare experiment."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer, seed_everything

from litlab.app.cli import main
from litlab.core.errors import LitlabError
from litlab.nlp.callbacks.text_writer import SEPARATOR
from litlab.nlp.data.char_text import CharTextDataModule, CharVocabulary
from litlab.nlp.models.gpt import GPT
from litlab.nlp.tasks.language_model import LanguageModel

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE_GPT = str(REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt.yaml")
TEXT = "the quick brown fox jumps over the lazy dog.\n" * 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def tiny_task(vocab_size: int, **kwargs) -> LanguageModel:
    torch.manual_seed(0)
    gpt = GPT(vocab_size, block_size=8, num_layers=1, num_heads=2, embed_dim=16)
    return LanguageModel(gpt, **kwargs)


def quiet_trainer(**kwargs) -> Trainer:
    return Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_val_loss_is_the_mean_over_every_val_character_and_bpc_is_loss_over_ln2(text_file):
    # eval_batch_size 5 leaves a short last batch, and the last block is padded.
    datamodule = CharTextDataModule(str(text_file), block_size=8, eval_batch_size=5)
    task = tiny_task(datamodule.vocab_size)
    (metrics,) = quiet_trainer().validate(task, datamodule=datamodule, verbose=False)

    val = datamodule.val_tokens
    losses = []
    with torch.no_grad():
        for start in range(0, len(val) - 1, 8):
            targets = val[start + 1 : start + 9]
            logits = task(val[None, start : start + len(targets)])[0]
            losses.append(F.cross_entropy(logits, targets, reduction="none"))
    expected = torch.cat(losses).mean().item()
    assert (len(val) - 1) % 8 != 0  # the last block is a short one
    assert metrics["val/loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["val/bpc"] == pytest.approx(metrics["val/loss"] / math.log(2), rel=1e-6)


def test_generation_is_deterministic_for_a_seed(text_file):
    datamodule = CharTextDataModule(str(text_file), block_size=8, prompts=["the ", "dog"])
    task = tiny_task(datamodule.vocab_size, max_new_tokens=12, temperature=0.9, top_p=0.95)

    def predict(seed: int) -> list[dict[str, list[str]]]:
        seed_everything(seed, verbose=False)
        return quiet_trainer().predict(task, datamodule=datamodule)

    first = predict(3)
    assert [p["prompt"] for p in first] == [["the "], ["dog"]]
    assert [len(p["text"][0]) for p in first] == [4 + 12, 3 + 12]
    assert all(p["text"][0].startswith(p["prompt"][0]) for p in first)
    assert predict(3) == first
    assert predict(4) != first


def test_greedy_generation_matches_the_model(text_file):
    datamodule = CharTextDataModule(str(text_file), block_size=8, prompts=["fox"])
    task = tiny_task(datamodule.vocab_size, max_new_tokens=5, temperature=0)
    (prediction,) = quiet_trainer().predict(task, datamodule=datamodule)
    prompt = datamodule.encode("fox")[None]
    expected = task.network.generate(prompt, 5, temperature=0)[0]
    assert prediction["text"] == [datamodule.decode(expected)]


def test_model_vocabulary_smaller_than_the_data_is_refused(text_file):
    datamodule = CharTextDataModule(str(text_file), block_size=8)
    task = tiny_task(datamodule.vocab_size - 1)
    with pytest.raises(LitlabError, match=f"vocab_size: {datamodule.vocab_size}"):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=datamodule)


def test_data_blocks_longer_than_the_model_context_are_refused(text_file):
    datamodule = CharTextDataModule(str(text_file), block_size=9)
    task = tiny_task(datamodule.vocab_size)
    with pytest.raises(LitlabError, match="block_size to at most 8"):
        quiet_trainer(fast_dev_run=1).fit(task, datamodule=datamodule)


def test_checkpoint_vocabulary_must_match_the_data():
    task = tiny_task(5)
    task.vocabulary = CharVocabulary("abcde")
    checkpoint: dict = {}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint["vocabulary"] == "abcde"
    task.on_load_checkpoint(checkpoint)
    with pytest.raises(LitlabError, match="differs"):
        task.on_load_checkpoint({"vocabulary": "abcdf"})
    # Without a datamodule the checkpoint's vocabulary decodes.
    fresh = tiny_task(5)
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.vocabulary.decode([4, 0]) == "ea"


@pytest.mark.parametrize(("option", "value"), [("temperature", -1.0), ("top_k", 0), ("top_p", 2.0)])
def test_bad_sampling_options_name_the_cli_key(option, value):
    with pytest.raises(LitlabError, match=f"--model.{option}"):
        tiny_task(5, **{option: value})


# ----- through the litlab command


@pytest.fixture
def cli(monkeypatch, in_tmp_dir, data_root):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    return in_tmp_dir


def test_fit_fast_dev_run(cli):
    main(["fit", "-c", SHAKESPEARE_GPT, "--trainer.fast_dev_run", "1"])
    assert not any(cli.rglob("*.ckpt"))


def runs(root: Path) -> set[Path]:
    folder = root / "runs" / "shakespeare_char_gpt"
    return set(folder.iterdir()) if folder.is_dir() else set()


def test_predict_from_the_best_checkpoint_writes_the_samples(cli):
    quiet = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    main(
        [
            "fit", "-c", SHAKESPEARE_GPT, *quiet,
            "--trainer.max_steps", "2",
            "--data.init_args.samples_per_epoch", "24",
            "--trainer.limit_val_batches", "1",
        ]
    )  # fmt: skip
    (fit_run,) = runs(cli)
    assert (fit_run / "checkpoints" / "best.ckpt").is_file()

    def predict(*args: str) -> str:
        before = runs(cli)
        main(["predict", "-c", SHAKESPEARE_GPT, "--ckpt_path", "best", *quiet, *args])
        # Not the last name sorted: run folders started within one second sort by their id.
        (run,) = runs(cli) - before
        return (run / "samples.txt").read_text()

    generation = [
        "--model.max_new_tokens", "12", "--model.temperature", "0.8", "--model.top_k", "10",
        "--data.init_args.prompts", '["ROMEO:", "JULIET:"]',
    ]  # fmt: skip
    samples = predict(*generation)
    texts = samples.split(f"\n{SEPARATOR}\n")
    assert texts[-1] == ""
    assert texts[0].startswith("ROMEO:")
    assert texts[1].startswith("JULIET:")
    assert [len(text) for text in texts[:2]] == [6 + 12, 7 + 12]
    # Same seed, same samples; another seed, others.
    assert predict(*generation) == samples
    assert predict(*generation, "--seed_everything", "7") != samples


def test_predict_refuses_a_prompt_outside_the_vocabulary(cli):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict", "-c", SHAKESPEARE_GPT, "--trainer.logger", "false",
                "--data.init_args.prompts", '["Caf\u00e9 {x}"]',
            ]
        )  # fmt: skip
    message = str(exit_info.value.code)
    assert message.startswith("litlab: error: prompt")
    assert "'\u00e9{}'" in message
