"""The FSDP configs trained for real on two CPU processes (gloo), against one process.

Lightning's FSDPStrategy refuses the CPU; ``cpu_fsdp.CPUFSDPStrategy`` (tests/helpers) only
hands PyTorch's FSDP the CPU device, so the sharding, the wrapping and activation-checkpointing
policies of the YAML, the gathered checkpoints and litlab's hooks are the ones a GPU run uses.
Precision is ``32-true`` here (the configs' ``bf16-mixed`` is for GPUs), so the runs compare
with one process within float rounding (see test_ddp.py for why not bit for bit).

- char GPT (``shakespeare_char_gpt_fsdp.yaml``): each rank takes its half of the one-process
  batch (litlab's ordered sharding), so 2 ranks x B train as 1 process x 2B, with gradient
  clipping by the norm over all shards (which Lightning's FSDP leaves to the module).
- LoRA causal LM (``causal_lm_lora_fsdp.yaml``): its data are shuffled by Lightning's
  DistributedSampler under several ranks, in an order that depends on their number (and one
  process draws its order from the global generator), so the reference is DDP on the same two
  ranks, which test_ddp.py shows equal to one process. FSDP must end where DDP does, and
  where it ended uninterrupted when resumed from its step-3 checkpoint. Its checkpoints hold
  the adapter alone, and the adapter folder is exported on rank 0 while the weights are
  sharded.
- GPT-2 pre-training (``causal_lm_pretrain.yaml`` with the FSDP strategy given on the command
  line): the whole model is exported and published from the gathered checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from launching import BIN, fit_in_process, launch, max_difference
from safetensors.torch import load_file
from tiny_causal_lm import TINY_TEXT, write_tiny_base
from transformers import AutoModelForCausalLM

from litlab.app.cli import main
from litlab.nlp.models.hf_causal_lm import HFCausalLM

REPO_ROOT = Path(__file__).resolve().parents[2]
NLP = REPO_ROOT / "experiments" / "nlp"
GPT_FSDP = NLP / "shakespeare_char_gpt_fsdp.yaml"
LORA_FSDP = NLP / "causal_lm_lora_fsdp.yaml"
PRETRAIN = NLP / "causal_lm_pretrain.yaml"
TOLERANCE = 1e-5
MIN_TRAINING_CHANGE = 1e-3
BATCH = 4  # per rank
GPT_STEPS = 6
# Small enough that every step is clipped: clipping by each rank's own shards would differ.
GPT_CLIP = 0.05
GPT2_BLOCK = "[transformers.models.gpt2.modeling_gpt2.GPT2Block]"

QUIET = [
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.num_sanity_val_steps", "0",
    "--trainer.logger", "false",
]  # fmt: skip
ON_TWO_CPU_PROCESSES = [
    "--trainer.accelerator", "cpu", "--trainer.devices", "2",
    "--trainer.strategy.class_path", "cpu_fsdp.CPUFSDPStrategy", "--trainer.precision", "32-true",
]  # fmt: skip
ON_TWO_DDP_PROCESSES = [
    "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
    "--trainer.precision", "32-true",
]  # fmt: skip
ON_ONE_CPU_PROCESS = [
    "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto",
    "--trainer.precision", "32-true",
]  # fmt: skip
TINY_GPT = [
    "--model.network.init_args.num_layers", "2",  # two FSDP units
    "--model.network.init_args.embed_dim", "32",
    "--model.network.init_args.num_heads", "2",
    "--model.network.init_args.block_size", "32",
    "--model.network.init_args.dropout", "0",
    "--model.lr_scheduler.init_args.warmup_steps", "2",
    "--data.init_args.block_size", "32",
    "--data.init_args.samples_per_epoch", str(2 * BATCH * GPT_STEPS),
    "--trainer.max_steps", str(GPT_STEPS),
    "--trainer.limit_val_batches", "2",
    *QUIET,
]  # fmt: skip


def litlab(*args: str) -> list[str]:
    return [str(BIN / "litlab"), *args]


def run_checkpoints(runs: Path) -> Path:
    """The checkpoints folder of the one run under ``runs`` (runs/<experiment>/<run>/)."""
    (checkpoints,) = runs.glob("*/*/checkpoints")
    return checkpoints


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    (root / "corpus.txt").write_text(TINY_TEXT)
    torch.manual_seed(0)
    base = write_tiny_base(root / "base", root / "bpe")
    return {"text": root / "corpus.txt", "base": base}


def tiny_causal_lm(corpus: dict[str, Path], folder: Path) -> list[str]:
    return [
        "--data.train_files", str(corpus["text"]),
        "--data.block_size", "16",
        "--data.cache_dir", str(folder / "cache"),
        "--trainer.limit_val_batches", "2",
        *QUIET,
    ]  # fmt: skip


@pytest.mark.slow
def test_gpt_fsdp_config_trains_as_one_process_with_the_global_batch(tmp_path):
    launch(
        litlab(
            "fit", "-c", str(GPT_FSDP), "--runs_root", "fsdp", *TINY_GPT, *ON_TWO_CPU_PROCESSES,
            "--data.init_args.batch_size", str(BATCH),
            "--trainer.gradient_clip_val", str(GPT_CLIP),
        ),
        cwd=tmp_path,
    )  # fmt: skip
    single = [*TINY_GPT, *ON_ONE_CPU_PROCESS, "--data.init_args.batch_size", str(2 * BATCH)]
    fit_in_process(
        GPT_FSDP, [*single, "--trainer.gradient_clip_val", str(GPT_CLIP)], tmp_path / "one"
    )
    fit_in_process(GPT_FSDP, [*single, "--trainer.gradient_clip_val", "0"], tmp_path / "unclipped")

    sharded_checkpoint = run_checkpoints(tmp_path / "fsdp") / "last.ckpt"
    sharded = weights(sharded_checkpoint)
    one = weights(run_checkpoints(tmp_path / "one") / "last.ckpt")
    unclipped = weights(run_checkpoints(tmp_path / "unclipped") / "last.ckpt")
    # A whole checkpoint (gathered on rank 0, with the model's own names and shapes), equal to
    # the one-process run's. Clipping changed that run by far more than the tolerance
    # (measured 7e-4: AdamW undoes most of a constant gradient scale, not a changing one).
    assert max_difference(sharded, one) < TOLERANCE
    assert max_difference(one, unclipped) > 10 * TOLERANCE
    assert torch.load(sharded_checkpoint, weights_only=False)["global_step"] == GPT_STEPS

    # The docs' command: the FSDP checkpoint read on one device.
    with mock.patch.object(sys, "argv", ["litlab"]):
        main(["validate", "-c", str(GPT_FSDP), "--runs_root", str(tmp_path / "fsdp"),
              "--ckpt_path", str(sharded_checkpoint), *TINY_GPT, *ON_ONE_CPU_PROCESS])  # fmt: skip


@pytest.fixture(scope="module")
def lora(tiny_corpus, tmp_path_factory) -> dict[str, Any]:
    """The LoRA FSDP config on 2 ranks for 5 steps, the same on 2 DDP ranks, and the FSDP run
    resumed from its step-3 checkpoint (the only validation, so best.ckpt), mid-epoch."""
    folder = tmp_path_factory.mktemp("lora_fsdp")
    tiny = [
        *tiny_causal_lm(tiny_corpus, folder),
        "--data.val_files", str(tiny_corpus["text"]),
        "--data.text_column", "text",
        "--trainer.val_check_interval", "3",
        "--model.network.init_args.pretrained", str(tiny_corpus["base"]),
        "--data.tokenizer", str(tiny_corpus["base"]),
        "--model.network.init_args.adapter.init_args.lora_dropout", "0",
        "--model.lr", "0.01",
        "--model.lr_scheduler.init_args.warmup_steps", "2",
        "--data.batch_size", str(BATCH),
        "--trainer.max_steps", "5",
    ]  # fmt: skip
    fsdp = [*tiny, *ON_TWO_CPU_PROCESSES, "--runs_root", "fsdp"]
    launch(litlab("fit", "-c", str(LORA_FSDP), *fsdp), folder)
    launch(
        litlab("fit", "-c", str(LORA_FSDP), *tiny, *ON_TWO_DDP_PROCESSES, "--runs_root", "ddp"),
        folder,
    )
    checkpoints = run_checkpoints(folder / "fsdp")
    straight = torch.load(checkpoints / "last.ckpt", weights_only=False)
    best = torch.load(checkpoints / "best.ckpt", weights_only=False)
    straight_export = load_file(checkpoints / "last-adapter" / "adapter_model.safetensors")
    launch(
        litlab("fit", "-c", str(LORA_FSDP), *fsdp, "--ckpt_path", str(checkpoints / "best.ckpt")),
        folder,
    )  # fmt: skip
    return {
        "straight": straight,
        "straight_export": straight_export,
        "best": best,
        "ddp": weights(run_checkpoints(folder / "ddp") / "last.ckpt"),
        "resumed": torch.load(checkpoints / "last.ckpt", weights_only=False),
        "checkpoints": checkpoints,
    }


@pytest.mark.slow
def test_lora_fsdp_config_trains_as_ddp_and_keeps_the_adapter_alone(lora):
    adapter = lora["straight"]["state_dict"]
    assert lora["straight"]["global_step"] == 5
    # The adapter alone (LoRA A and B of c_attn, attention c_proj and MLP c_proj in 2 blocks),
    # as DDP trains it; B starts at zero and moved.
    assert len(adapter) == 12
    assert all(".lora_" in name for name in adapter)
    assert max_difference(adapter, lora["ddp"]) < TOLERANCE
    assert max(adapter[name].abs().max().item() for name in adapter if "lora_B" in name) > (
        MIN_TRAINING_CHANGE
    )
    # The adapter folder written beside the checkpoint on rank 0 holds those tensors.
    exported = lora["straight_export"]
    assert len(exported) == len(adapter)
    for name, tensor in exported.items():
        assert torch.equal(
            tensor, adapter["network.model." + name.replace(".weight", ".default.weight")]
        )


@pytest.mark.slow
def test_lora_fsdp_run_resumes_exactly_in_its_folder_from_its_adapter(lora, tiny_corpus):
    assert lora["best"]["global_step"] == 3
    resumed = lora["resumed"]
    assert resumed["global_step"] == 5
    # Adapter, Adam's moments, schedule and data position came back: the resumed run ends
    # where the uninterrupted one did.
    assert max_difference(resumed["state_dict"], lora["straight"]["state_dict"]) < TOLERANCE
    # Its adapter folder (rewritten in the same run folder) loads onto the base.
    folder = lora["checkpoints"] / "last-adapter"
    loaded = HFCausalLM(pretrained=str(tiny_corpus["base"]), adapter_path=str(folder))
    adapter = resumed["state_dict"]
    compared = [name for name in loaded.state_dict() if f"network.{name}" in adapter]
    assert len(compared) == len(adapter)
    for name in compared:
        assert torch.equal(loaded.state_dict()[name], adapter[f"network.{name}"]), name


@pytest.mark.slow
def test_pretraining_under_fsdp_exports_and_publishes_the_whole_model(tmp_path, tiny_corpus):
    published = tmp_path / "published"
    launch(
        litlab(
            "fit", "-c", str(PRETRAIN), "--runs_root", "fsdp",
            *tiny_causal_lm(tiny_corpus, tmp_path),
            "--model.network.init_args.config.n_embd", "32",
            "--model.network.init_args.config.n_layer", "2",
            "--model.network.init_args.config.n_head", "2",
            "--model.network.init_args.config.vocab_size", "300",
            "--data.bpe_vocab_size", "300",
            "--trainer.max_steps", "3",
            "--trainer.callbacks.publish_dir", str(published),
            # Only trainer.* turns the config into an FSDP run.
            *ON_TWO_CPU_PROCESSES,
            "--trainer.strategy.auto_wrap_policy", GPT2_BLOCK,
            "--trainer.strategy.activation_checkpointing_policy", GPT2_BLOCK,
            "--trainer.strategy.state_dict_type", "full",
        ),
        cwd=tmp_path,
    )  # fmt: skip
    checkpoints = run_checkpoints(tmp_path / "fsdp")
    state = weights(checkpoints / "best.ckpt")
    for folder in (checkpoints / "best-hf", published):
        model = AutoModelForCausalLM.from_pretrained(folder)
        exported = model.state_dict()
        assert exported
        assert all(
            torch.equal(tensor, state[f"network.model.{name}"]) for name, tensor in exported.items()
        )
