"""The text classification task: training, checks against the data, predictions, the CLI."""

import csv
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import Logger

from litlab.app.cli import main
from litlab.core.errors import LitlabError
from litlab.nlp.data.text_classification import TextClassificationDataModule
from litlab.nlp.models.rnn_classifier import RNNClassifier
from litlab.nlp.tasks.text_classification import TextClassifier

POSITIVE = ["a good film", "good acting , good story", "the best film", "great and good"]
NEGATIVE = ["a bad film", "bad acting , bad story", "the worst film", "awful and bad"]


def write_data(folder: Path) -> Path:
    rows = [(t, 1) for t in POSITIVE] + [(t, 0) for t in NEGATIVE]
    lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in rows]
    (folder / "train.tsv").write_text("\n".join(lines) + "\n")
    (folder / "unlabelled.txt").write_text("good good film\nbad bad film\n")
    return folder


def tiny_data(folder: Path, **options) -> TextClassificationDataModule:
    write_data(folder)
    defaults = {
        "train": "train.tsv",
        "val": "train.tsv",
        "test": "train.tsv",
        "predict": "unlabelled.txt",
        "text_column": "sentence",
        "classes": ["negative", "positive"],
        "batch_size": 4,
        "data_dir": str(folder),
        "cache_dir": str(folder / "cache"),
    }
    return TextClassificationDataModule(**{**defaults, **options})


def tiny_rnn(**options) -> RNNClassifier:
    torch.manual_seed(0)
    return RNNClassifier(**{"vocab_size": 32, "embed_dim": 8, "hidden_size": 8, **options})


class Recorder(Logger):
    name = "recorder"
    version = 0

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def trainer(tmp_path, **options) -> Trainer:
    defaults = {
        "max_epochs": 30,
        "logger": Recorder(),
        "enable_progress_bar": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        "accelerator": "cpu",
    }
    return Trainer(**{**defaults, **options})


def test_rnn_learns_the_tiny_task_and_reports_params(tmp_path):
    task = TextClassifier(tiny_rnn(dropout=0.0), lr=0.02)
    fit = trainer(tmp_path)
    fit.fit(task, datamodule=tiny_data(tmp_path))
    metrics = fit.logger.metrics
    assert metrics["val/acc"] == 1.0
    total = sum(p.numel() for p in task.network.parameters())
    assert metrics["params/trainable"] == metrics["params/total"] == total
    assert metrics["params/trainable_percent"] == 100.0
    (result,) = fit.test(task, datamodule=tiny_data(tmp_path))
    assert result["test/acc"] == 1.0


def test_only_trainable_parameters_reach_the_optimizer(tmp_path):
    task = TextClassifier(tiny_rnn(freeze_embeddings=True), weight_decay=0.1)
    optimizer = task.configure_optimizers()
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(task.network.embedding.weight) not in optimised
    assert len(optimised) == sum(1 for p in task.parameters() if p.requires_grad)


def test_word_vectors_are_loaded_with_the_data_vocabulary(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good " + " ".join(["0.5"] * 8) + "\n")
    task = TextClassifier(tiny_rnn(pretrained_vectors=str(vectors), freeze_embeddings=True))
    data = tiny_data(tmp_path)
    trainer(tmp_path, max_epochs=1).fit(task, datamodule=data)
    good = data.tokenizer.convert_tokens_to_ids("good")
    assert task.network.embedding.weight[good].tolist() == [0.5] * 8


def test_more_labels_than_classes(tmp_path):
    data = tiny_data(tmp_path, classes=None)
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\nmeh\t2\n")
    with pytest.raises(LitlabError, match=r"labels up to 2.*num_classes=2"):
        trainer(tmp_path).fit(TextClassifier(tiny_rnn()), datamodule=data)


def test_embedding_table_smaller_than_the_vocabulary(tmp_path):
    task = TextClassifier(tiny_rnn(vocab_size=5))
    with pytest.raises(LitlabError, match=r"tokenizer has 15 tokens.*only 5 rows"):
        trainer(tmp_path).fit(task, datamodule=tiny_data(tmp_path))


def test_predict_gives_label_name_and_probability(tmp_path):
    task = TextClassifier(tiny_rnn())
    rows = trainer(tmp_path).predict(task, datamodule=tiny_data(tmp_path))[0]
    assert rows["id"] == [0, 1]
    assert rows["class_name"] == [["negative", "positive"][i] for i in rows["label"].tolist()]
    assert ((rows["probability"] >= 0.5) & (rows["probability"] <= 1)).all()


# ----- through the litlab command


@pytest.fixture
def cli(monkeypatch, in_tmp_dir):
    monkeypatch.setattr(sys, "argv", ["litlab"])
    write_data(in_tmp_dir)
    return in_tmp_dir


def write_config(folder: Path, network: dict, tokenizer: str | None = None) -> str:
    """A YAML for the tiny data (written by write_data) in ``folder``."""
    config = {
        "model": {
            "class_path": "litlab.nlp.tasks.text_classification.TextClassifier",
            "init_args": {"network": network, "lr": 0.01},
        },
        "data": {
            "class_path": "litlab.nlp.data.text_classification.TextClassificationDataModule",
            "init_args": {
                "train": "train.tsv",
                "val": "train.tsv",
                "test": "train.tsv",
                "predict": "unlabelled.txt",
                "text_column": "sentence",
                "classes": ["negative", "positive"],
                "tokenizer": tokenizer,
                "batch_size": 4,
                "data_dir": str(folder),
                "cache_dir": str(folder / "cache"),
            },
        },
        "trainer": {"logger": False, "enable_progress_bar": False, "max_epochs": 2},
    }
    path = folder / "tiny_text.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_fit_test_predict_from_the_best_checkpoint(cli):
    network = {
        "class_path": "litlab.nlp.models.rnn_classifier.RNNClassifier",
        "init_args": {"vocab_size": 32, "embed_dim": 8, "hidden_size": 8},
    }
    config = write_config(cli, network)
    main(["fit", "-c", config])
    run = sorted((cli / "runs" / "tiny_text").iterdir())[-1]
    assert (run / "checkpoints" / "best.ckpt").is_file()
    main(["test", "-c", config, "--ckpt_path", "best"])
    main(["predict", "-c", config, "--ckpt_path", "best"])
    predictions = sorted((cli / "runs" / "tiny_text").rglob("predictions.csv"))
    rows = list(csv.DictReader(predictions[-1].open()))
    assert [row["id"] for row in rows] == ["0", "1"]
    assert set(rows[0]) == {"id", "label", "class_name", "probability"}
