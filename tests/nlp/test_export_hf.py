"""`litlab export --format hf`: a LoRA-adapted Hugging Face model saved as a plain model folder
with the adapter merged in, which transformers loads without peft to the adapted model's logits."""

import sys

import pytest
import torch
import yaml
from peft import LoraConfig, PromptTuningConfig
from tiny_causal_lm import VOCAB_SIZE, write_tiny_base
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
)

from litlab.app.cli import main
from litlab.core.errors import LitlabError
from litlab.nlp.merged_export import export_merged
from litlab.nlp.models.hf_causal_lm import HFCausalLM
from litlab.nlp.models.hf_sequence_classifier import HFSequenceClassifier
from litlab.nlp.tasks.causal_lm import CausalLanguageModel

LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"]}


def perturb_adapter(network: torch.nn.Module) -> None:
    """LoRA's B matrices start at zero (the adapter changes nothing); make them count."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.normal_(std=0.5)


def test_lora_checkpoint_exports_as_a_merged_model(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    base = str(write_tiny_base(tmp_path / "base", tmp_path / "tokenizer-cache"))
    network_config = {"pretrained": base, "adapter": {"class_path": "peft.LoraConfig",
                                                      "init_args": LORA}}  # fmt: skip
    task = CausalLanguageModel(HFCausalLM(pretrained=base, adapter=LoraConfig(**LORA))).eval()
    perturb_adapter(task.network)
    # The checkpoint Lightning would write: only the adapter's tensors, the task's hooks run.
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "lora.ckpt")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {
        "class_path": "litlab.nlp.tasks.causal_lm.CausalLanguageModel",
        "init_args": {"network": {"class_path": "litlab.nlp.models.hf_causal_lm.HFCausalLM",
                                  "init_args": network_config}},
    }}))  # fmt: skip

    main(["export", "--ckpt", str(tmp_path / "lora.ckpt"), "-c", str(config), "--format", "hf"])

    merged_dir = tmp_path / "lora-merged"
    assert not (merged_dir / "adapter_config.json").exists()
    assert (merged_dir / "tokenizer.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    plain_base = AutoModelForCausalLM.from_pretrained(base).eval()
    ids = torch.randint(0, VOCAB_SIZE, (3, 7))
    with torch.no_grad():
        adapted = task.network(ids)
        torch.testing.assert_close(merged(input_ids=ids).logits, adapted, atol=1e-5, rtol=1e-4)
        assert (plain_base(input_ids=ids).logits - adapted).abs().max() > 1e-2


@pytest.fixture
def tiny_bert(tmp_path):
    config = BertConfig(
        vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path / "bert")
    return str(tmp_path / "bert")


def test_sequence_classifier_merges_adapter_and_trained_head(tiny_bert, tmp_path):
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])
    network = HFSequenceClassifier(tiny_bert, num_labels=3, adapter=lora).eval()
    perturb_adapter(network)
    export_merged(network, tmp_path / "merged")

    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    ids = torch.randint(0, 20, (3, 6))
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, network(ids))


def test_prompt_tuning_cannot_be_merged(tiny_bert, tmp_path):
    prompt = PromptTuningConfig(num_virtual_tokens=2)
    network = HFSequenceClassifier(tiny_bert, num_labels=2, adapter=prompt)
    with pytest.raises(LitlabError, match="cannot be merged"):
        export_merged(network, tmp_path / "merged")


def test_hf_format_needs_a_hugging_face_network(tmp_path):
    with pytest.raises(LitlabError, match="not a Hugging Face network"):
        export_merged(torch.nn.Linear(2, 2), tmp_path / "merged")
