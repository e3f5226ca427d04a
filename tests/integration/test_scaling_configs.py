"""The multi-GPU presets and launch recipes, checked without a GPU: the FSDP experiment builds
the strategy Lightning expects (each transformer block its own FSDP unit, with activation
checkpointing), and the SLURM script hands litlab the node and device counts SLURM gives it.

FSDP itself cannot run here: Lightning's FSDPStrategy and PyTorch's FSDP refuse the CPU.
test_experiments.py runs the same YAML's model and data for one batch on one CPU process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch.strategies import FSDPStrategy, Strategy
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from litlab.app.cli import main
from litlab.core.layers import TransformerBlock
from litlab.nlp.models.gpt import GPT

REPO_ROOT = Path(__file__).resolve().parents[2]
GPT_FSDP = REPO_ROOT / "experiments" / "nlp" / "shakespeare_char_gpt_fsdp.yaml"
SBATCH = REPO_ROOT / "scripts" / "slurm" / "litlab.sbatch"


def build_strategy(config: dict) -> Strategy:
    """trainer.strategy of a YAML, built as LightningCLI builds it (jsonargparse)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--strategy", type=str | Strategy)  # Trainer's annotation
    parsed = parser.parse_object({"strategy": config["trainer"]["strategy"]})
    return parser.instantiate(parsed).strategy


def test_gpt_fsdp_wraps_and_checkpoints_each_transformer_block():
    config = yaml.safe_load(GPT_FSDP.read_text())
    strategy = build_strategy(config)
    assert type(strategy) is FSDPStrategy
    wrap = strategy.kwargs["auto_wrap_policy"]
    checkpointing = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]
    assert isinstance(wrap, ModuleWrapPolicy)
    assert isinstance(checkpointing, ModuleWrapPolicy)
    # Frozen and trainable parameters may share a unit (LoRA), and the optimizer sees the
    # original parameters: Lightning's default, kept.
    assert strategy.kwargs["use_orig_params"] is True
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    # The policies select exactly the model's blocks: one unit per layer.
    # vocab_size: the data's (65 characters), which the litlab command links in.
    gpt = GPT(**{"vocab_size": 65, **config["model"]["init_args"]["network"]["init_args"]})
    for policy in (wrap, checkpointing):
        selected = [m for m in gpt.modules() if isinstance(m, tuple(policy._module_classes))]
        assert selected == list(gpt.blocks)
    assert len(gpt.blocks) == 6
    assert {TransformerBlock} == set(wrap._module_classes)


def test_gpt_fsdp_keeps_nanogpts_global_batch():
    config = yaml.safe_load(GPT_FSDP.read_text())
    trainer, data = config["trainer"], config["data"]["init_args"]
    assert trainer["accelerator"] == "gpu"
    assert trainer["precision"] == "bf16-mixed"
    assert data["batch_size"] * trainer["devices"] * trainer["num_nodes"] == 64


def test_gpt_fsdp_config_resolves_in_the_cli(capsys, monkeypatch, in_tmp_dir):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(GPT_FSDP), "--trainer.devices", "8", "--print_config"])
    assert exit_info.value.code in (None, 0)
    strategy = yaml.safe_load(capsys.readouterr().out)["trainer"]["strategy"]
    assert strategy["class_path"] == "lightning.pytorch.strategies.FSDPStrategy"
    assert strategy["init_args"]["activation_checkpointing_policy"] == [
        "litlab.core.layers.TransformerBlock"
    ]


def test_sbatch_script_gives_litlab_the_slurm_node_and_task_counts(tmp_path, monkeypatch):
    """Run the script's body as srun would start it, with a recording stand-in for srun; then
    the litlab command it builds must resolve."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "srun-args"
    srun = bin_dir / "srun"
    srun.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {calls}\n')
    srun.chmod(0o755)
    headers = [
        line.split()[1] for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")
    ]
    assert "--signal=SIGUSR1@90" in headers
    assert "--requeue" in headers
    per_node = {h.split("=")[0]: h.split("=")[1] for h in headers if "=" in h}
    assert per_node["--ntasks-per-node"] == per_node["--gpus-per-node"]

    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS_PER_NODE": "8",
        "LITLAB": "litlab",
    }
    subprocess.run(
        ["bash", str(SBATCH), str(GPT_FSDP), "--data.batch_size", "4"],
        env=env,
        check=True,
        cwd=tmp_path,
        timeout=60,
    )
    args = calls.read_text().splitlines()
    assert args[:2] == ["--kill-on-bad-exit=1", "litlab"]
    litlab_args = args[2:]
    assert litlab_args[:3] == ["fit", "-c", str(GPT_FSDP)]
    assert "--trainer.num_nodes 2 --trainer.devices 8 --data.batch_size 4" in " ".join(litlab_args)

    monkeypatch.setattr(sys, "argv", ["litlab"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*litlab_args, "--print_config"])
    assert exit_info.value.code in (None, 0)
