"""Every experiment YAML runs one batch of fit, so a preset can never silently rot.

MNIST, Tiny Shakespeare and SST-2 are the real ones; Fashion-MNIST and CIFAR-10 have no offline
copy, so small fake files in torchvision's own layout stand in, and pretrained weights (a
download) are replaced by the same architecture's random weights. A Hugging Face model that a
fine-tuning YAML names (the output of another experiment) is replaced by a tiny random GPT-2.
"""

import sys
from pathlib import Path

import datasets
import pytest
import torchvision
import yaml
from fake_datasets import accept_fake_cifar10, write_fake_cifar10, write_fake_fashion_mnist
from tiny_causal_lm import write_tiny_base

from litlab.app.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted(
    path
    for path in (REPO_ROOT / "experiments").rglob("*.yaml")
    if not path.name.endswith(".sweep.yaml")
)
SWEEPS = sorted((REPO_ROOT / "experiments").rglob("*.sweep.yaml"))


def test_there_are_experiments():
    assert EXPERIMENTS
    assert SWEEPS


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_sweep_file_is_valid(sweep_file, monkeypatch):
    """Each sweep file parses, maps to Optuna, and its keys and typical values are accepted by
    its experiment's parser (nothing is trained)."""
    from litlab.app.sweeps.optuna_space import OptunaSpace
    from litlab.app.sweeps.spec import load_sweep
    from litlab.app.sweeps.validation import check_config_keys

    monkeypatch.chdir(REPO_ROOT)  # program: paths are relative to the checkout's root
    spec = load_sweep(sweep_file)
    assert Path(spec.program).with_suffix(".sweep.yaml") == sweep_file.relative_to(REPO_ROOT)
    OptunaSpace(spec)
    check_config_keys(spec, spec.center_values())


@pytest.fixture
def offline_data_root(data_root, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    for name in ("MNIST", "tinyshakespeare", "SST-2"):
        (root / name).symlink_to(data_root / name)
    write_fake_fashion_mnist(root, n_train=5100, n_test=100)  # the YAML holds out 5000
    accept_fake_cifar10(monkeypatch, write_fake_cifar10(root, n_per_batch=1100, n_test=100))
    monkeypatch.setenv("LITLAB_DATA", str(root))
    return root


def random_pretrained_weights(monkeypatch, config: dict) -> None:
    network = config["model"]["init_args"]["network"]["init_args"]
    if network.get("weights"):
        state = torchvision.models.get_model(network["arch"], weights=None).state_dict()
        monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", lambda *a, **k: state)


def tiny_hf_base(config: dict, tmp_path: Path) -> list[str]:
    """Overrides pointing a YAML's pretrained Hugging Face model and tokenizer (e.g. the model
    causal_lm_pretrain.yaml publishes) at a tiny GPT-2 written here."""
    network = config["model"]["init_args"]["network"]
    if not network["class_path"].endswith(".HFCausalLM") or "pretrained" not in network.get(
        "init_args", {}
    ):
        return []
    base = str(write_tiny_base(tmp_path / "tiny-hf-base", tmp_path / "bpe-cache"))
    overrides = ["--model.network.init_args.pretrained", base]
    if "tokenizer" in config["data"].get("init_args", {}):
        overrides += ["--data.tokenizer", base]
    return overrides


def on_one_cpu(config: dict) -> list[str]:
    """Overrides running a multi-GPU preset (FSDP, which refuses the CPU) on one CPU process:
    its model, data and optimisation still run; the strategy is checked in test_scaling_configs."""
    trainer = config.get("trainer", {})
    if trainer.get("accelerator") not in ("gpu", "cuda"):
        return []
    return [
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
        "--trainer.strategy", "auto",
    ]  # fmt: skip


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_experiment_runs_one_batch(config, offline_data_root, in_tmp_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    # Tokenised text goes to the test's folder, not the user's datasets cache.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(in_tmp_dir / "hf-datasets"))
    parsed = yaml.safe_load(config.read_text())
    random_pretrained_weights(monkeypatch, parsed)
    overrides = tiny_hf_base(parsed, in_tmp_dir) + on_one_cpu(parsed)
    main(["fit", "-c", str(config), "--trainer.fast_dev_run", "1", *overrides])
    assert not (in_tmp_dir / "runs").exists() or not any((in_tmp_dir / "runs").rglob("*.ckpt"))
