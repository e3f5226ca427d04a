"""HFCausalLM: building, LoRA (what trains, how many parameters), saving and loading adapters,
merging, and attention masks."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig
from safetensors.torch import load_file
from tiny_causal_lm import tiny_gpt2_config, write_tiny_base
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
)
from transformers import AutoModelForCausalLM
from transformers.models.gpt2.modeling_gpt2 import GPT2Block
from transformers.pytorch_utils import Conv1D

from litlab.core.errors import LitlabError
from litlab.nlp.merge_adapter import main as merge_adapter_main
from litlab.nlp.merge_adapter import merge_adapter
from litlab.nlp.models.hf_causal_lm import HFCausalLM

TARGETS = ["c_attn", "c_proj"]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    return write_tiny_base(root / "model", root / "bpe")


def lora(r: int = 4, targets: list[str] = TARGETS) -> LoraConfig:
    return LoraConfig(
        r=r, lora_alpha=8, lora_dropout=0.0, target_modules=targets, fan_in_fan_out=True
    )


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 12)) -> torch.Tensor:
    return torch.randint(1, 300, shape, generator=torch.Generator().manual_seed(seed))


def train_one_step(model: HFCausalLM) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    x = tokens()
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    loss.backward()
    optimizer.step()


def logits_of(model: torch.nn.Module, x: torch.Tensor | None = None) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(tokens() if x is None else x)


def test_from_config_builds_the_sizes_asked_for():
    model = HFCausalLM(config=tiny_gpt2_config())
    assert model.config.n_layer == 2
    assert model.config.n_embd == 32
    assert logits_of(model).shape == (2, 12, 300)
    assert not model.is_adapted


def test_lora_trains_only_the_adapter(base_dir):
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    frozen_before = {
        name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad
    }
    lora_before = {
        name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
    }
    assert lora_before
    assert all("lora_" in name for name in lora_before)
    train_one_step(model)
    after = dict(model.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in frozen_before.items())
    assert any(not torch.equal(after[name], value) for name, value in lora_before.items())


def test_trainable_count_is_r_times_in_plus_out_per_target(base_dir):
    r = 4
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora(r))
    plain = AutoModelForCausalLM.from_pretrained(base_dir)
    expected = 0
    for name, module in plain.named_modules():
        if name.rsplit(".", 1)[-1] not in TARGETS:
            continue
        # Conv1D (GPT-2) stores its weight as (in, out); nn.Linear as (out, in).
        if isinstance(module, Conv1D):
            fan_in, fan_out = module.weight.shape
        else:
            fan_out, fan_in = module.weight.shape
        expected += r * (fan_in + fan_out)
    # Two layers: c_attn 32 -> 96, attn.c_proj 32 -> 32, mlp.c_proj 128 -> 32.
    assert expected == 2 * r * ((32 + 96) + (32 + 32) + (128 + 32))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected


def test_adapter_round_trip_gives_identical_logits(base_dir, tmp_path):
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    train_one_step(model)  # B starts at zero: train it so the adapter changes the output
    model.save_pretrained(tmp_path / "adapter")
    saved = {path.name for path in (tmp_path / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= saved
    assert "model.safetensors" not in saved
    # Small: the adapter alone, far below the base model's weights.
    adapter_bytes = (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    assert adapter_bytes < (base_dir / "model.safetensors").stat().st_size / 3

    loaded = HFCausalLM(pretrained=str(base_dir), adapter_path=str(tmp_path / "adapter"))
    assert torch.equal(logits_of(loaded), logits_of(model))
    assert not torch.allclose(logits_of(loaded), logits_of(HFCausalLM(pretrained=str(base_dir))))
    again = HFCausalLM(pretrained=str(base_dir))
    again.load_adapter(tmp_path / "adapter")
    assert torch.equal(logits_of(again), logits_of(model))


def test_adapter_saved_from_a_given_state_dict_even_when_its_blocks_are_wrapped(base_dir, tmp_path):
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    train_one_step(model)
    # As a checkpoint holds them: other values than the live ones, names without wrappers.
    state = {name: tensor + 1 for name, tensor in model.state_dict().items() if "lora_" in name}
    apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, GPT2Block))
    assert any("_checkpoint_wrapped_module" in name for name, _ in model.named_parameters())
    model.save_pretrained(tmp_path / "adapter", state_dict=state)
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert len(saved) == len(state)
    for name, tensor in saved.items():
        assert torch.equal(tensor, state["model." + name.replace(".weight", ".default.weight")])


def test_merge_gives_the_logits_of_the_unmerged_adapter(base_dir, tmp_path):
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    train_one_step(model)
    adapted = logits_of(model)
    model.save_merged(tmp_path / "merged")
    assert model.is_adapted  # saving merged leaves this model's adapter separate
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert torch.allclose(plain(tokens()).logits.detach(), adapted, atol=1e-5)
    model.merge_adapter()
    assert not model.is_adapted
    assert torch.allclose(logits_of(model), adapted, atol=1e-5)


def test_merge_adapter_command_writes_a_plain_model_with_tokenizer(base_dir, tmp_path):
    model = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    train_one_step(model)
    model.save_pretrained(tmp_path / "adapter")
    merge_adapter_main([str(tmp_path / "adapter"), str(tmp_path / "merged")])
    files = {path.name for path in (tmp_path / "merged").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert not any(name.startswith("adapter_") for name in files)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert torch.allclose(merged(tokens()).logits.detach(), logits_of(model), atol=1e-5)
    with pytest.raises(LitlabError, match="not an adapter folder"):
        merge_adapter(base_dir, tmp_path / "nowhere")


def test_right_padding_leaves_the_real_positions_unchanged(base_dir):
    model = HFCausalLM(pretrained=str(base_dir)).eval()
    x = tokens(shape=(1, 7))
    padded = torch.cat([x, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], dim=1).long()
    with torch.no_grad():
        assert torch.allclose(model(padded, mask)[:, :7], model(x), atol=1e-5)


def test_left_padded_prompt_generates_as_if_alone(base_dir):
    model = HFCausalLM(pretrained=str(base_dir)).eval()
    short, long = tokens(1, (1, 4)), tokens(2, (1, 9))
    batch = torch.cat([torch.cat([torch.zeros(1, 5, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :5] = 0
    options = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0, "eos_token_id": None}
    together = model.generate(batch, attention_mask=mask, **options)
    alone = model.generate(short, **options)
    assert torch.equal(together[0, 5:], alone[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of pretrained"),
        ({"pretrained": "x", "config": {"model_type": "gpt2"}}, "exactly one of pretrained"),
        ({"config": {"n_layer": 2}}, "needs a model_type"),
        ({"pretrained": "/nonexistent/model"}, "cannot load the causal LM"),
    ],
)
def test_clear_errors(options, message):
    with pytest.raises(LitlabError, match=message):
        HFCausalLM(**options)


def test_loading_an_adapter_twice_or_from_a_plain_folder_is_refused(base_dir, tmp_path):
    model = HFCausalLM(pretrained=str(base_dir))
    with pytest.raises(LitlabError, match="not an adapter folder"):
        model.load_adapter(base_dir)
    adapted = HFCausalLM(pretrained=str(base_dir), adapter=lora())
    adapted.save_pretrained(tmp_path / "adapter")
    with pytest.raises(LitlabError, match="already has one"):
        adapted.load_adapter(tmp_path / "adapter")
