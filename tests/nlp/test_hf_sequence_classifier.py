"""The Hugging Face classifier: full fine-tuning, LoRA and prompt tuning on a tiny BERT."""

import copy
import sys

import pytest
import torch
import yaml
from peft import LoraConfig, PromptTuningConfig
from torch import nn
from transformers import BertConfig, BertModel

from litlab.app.cli import main
from litlab.core.errors import LitlabError
from litlab.nlp.adapters import count_parameters
from litlab.nlp.data.word_tokenizer import train_word_tokenizer
from litlab.nlp.models.hf_sequence_classifier import HFSequenceClassifier

HIDDEN = 32
TEXTS = ["a good film", "a bad film", "the best film ever", "the worst acting"]


def write_tiny_bert(path):
    """A randomly initialised 2-layer BERT (no head, like MiniLM) and a word tokenizer."""
    tokenizer = train_word_tokenizer(TEXTS)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def batch(size=3, length=5):
    torch.manual_seed(1)
    ids = torch.randint(2, 11, (size, length))  # the tiny vocabulary has 11 tokens
    mask = torch.ones_like(ids)
    mask[0, 3:] = 0
    return ids, mask


def head_size(num_labels=2):
    return HIDDEN * num_labels + num_labels


def test_full_fine_tuning_trains_everything(tiny_bert):
    model = HFSequenceClassifier(tiny_bert, num_labels=3)
    count = count_parameters(model)
    assert count.trainable == count.total
    assert model(*batch()).shape == (3, 3)
    assert model.vocab_size == len(train_word_tokenizer(TEXTS))
    assert model.training  # from_pretrained's eval mode is undone: dropout trains


def lora():
    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"])


def test_lora_trains_only_the_adapter_and_the_head(tiny_bert):
    plain = HFSequenceClassifier(tiny_bert)
    targets = [
        module
        for name, module in plain.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in ("query", "value")
    ]
    expected = sum(4 * (m.in_features + m.out_features) for m in targets) + head_size()
    assert len(targets) == 4  # 2 layers x (query, value)

    model = HFSequenceClassifier(tiny_bert, adapter=lora())
    assert count_parameters(model).trainable == expected
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "classifier" in n for n in trained)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ids, mask = batch()
    nn.functional.cross_entropy(model(ids, mask), torch.tensor([0, 1, 1])).backward()
    optimizer.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in frozen.items())
    changed = [n for n, p in trained.items() if not torch.equal(after[n], p)]
    assert any("lora_B" in n for n in changed)
    assert any("classifier" in n for n in changed)


def test_prompt_tuning_trains_the_virtual_tokens_and_the_head(tiny_bert):
    adapter = PromptTuningConfig(num_virtual_tokens=7)
    given = copy.deepcopy(adapter)
    model = HFSequenceClassifier(tiny_bert, adapter=adapter)
    assert count_parameters(model).trainable == 7 * HIDDEN + head_size()
    assert model(*batch()).shape == (3, 2)
    assert adapter == given  # the run's hyperparameter is not filled in by peft


def test_adapter_for_another_task_is_refused(tiny_bert):
    adapter = LoraConfig(r=2, target_modules=["query"], task_type="CAUSAL_LM")
    with pytest.raises(LitlabError, match="SEQ_CLS"):
        HFSequenceClassifier(tiny_bert, adapter=adapter)


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(LitlabError, match="cannot load the pretrained model"):
        HFSequenceClassifier(str(tmp_path / "no-such-model"))


def test_real_minilm_lora_counts():
    """MiniLM-L6: 6 layers x (query, value) x r (384 + 384), plus the 384 x 2 head."""
    model = HFSequenceClassifier(
        "sentence-transformers/all-MiniLM-L6-v2", adapter=lora(), num_labels=2
    )
    count = count_parameters(model)
    assert count.trainable == 6 * 2 * 4 * (384 + 384) + 384 * 2 + 2
    assert 22_000_000 < count.total < 23_000_000


def test_lora_from_yaml_fast_dev_run(tmp_path, in_tmp_dir, monkeypatch):
    """The peft config as YAML gives it, through the litlab command."""
    monkeypatch.setattr(sys, "argv", ["litlab"])
    bert = write_tiny_bert(tmp_path / "tiny-bert")
    rows = ["sentence\tlabel"] + [f"{text}\t{i % 2}" for i, text in enumerate(TEXTS)]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n")
    lora_yaml = {
        "class_path": "peft.LoraConfig",
        "init_args": {"r": 2, "lora_alpha": 4, "target_modules": ["query", "value"]},
    }
    config = {
        "model": {
            "class_path": "litlab.nlp.tasks.text_classification.TextClassifier",
            "init_args": {
                "network": {
                    "class_path": "litlab.nlp.models.hf_sequence_classifier.HFSequenceClassifier",
                    "init_args": {"name_or_path": bert, "num_labels": 2, "adapter": lora_yaml},
                },
            },
        },
        "data": {
            "class_path": "litlab.nlp.data.text_classification.TextClassificationDataModule",
            "init_args": {
                "train": "train.tsv",
                "val": "train.tsv",
                "text_column": "sentence",
                "tokenizer": bert,
                "batch_size": 2,
                "data_dir": str(tmp_path),
                "cache_dir": str(tmp_path / "cache"),
            },
        },
        "trainer": {"logger": False, "enable_progress_bar": False},
    }
    path = tmp_path / "tiny_lora.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "-c", str(path), "--trainer.fast_dev_run", "1"])
    assert not any(in_tmp_dir.rglob("*.ckpt"))
