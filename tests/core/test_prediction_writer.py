import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer

from litlab.core.callbacks import CSVPredictionWriter
from litlab.core.callbacks.prediction_writer import prediction_output_path


class Doubler(LightningModule):
    def predict_step(self, batch, batch_idx):
        (x,) = batch
        return {"id": [f"item{int(v)}" for v in x], "double": x * 2}


def test_every_sample_becomes_one_row(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(7.0)), 3)
    writer = CSVPredictionWriter(str(tmp_path / "out" / "predictions.csv"))
    trainer = Trainer(callbacks=[writer], logger=False, enable_progress_bar=False)
    trainer.predict(Doubler(), data, return_predictions=False)
    rows = list(csv.reader(writer.path.open()))
    assert rows[0] == ["id", "double"]
    assert rows[1:] == [[f"item{i}", str(2.0 * i)] for i in range(7)]


def test_default_file_is_in_the_log_dir(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(2.0)), 2)
    writer = CSVPredictionWriter()
    trainer = Trainer(
        callbacks=[writer], logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.predict(Doubler(), data, return_predictions=False)
    assert writer.path == tmp_path / "predictions.csv"
    assert writer.path.read_text().splitlines()[0] == "id,double"


def test_output_path_per_rank(tmp_path):
    def trainer(rank, world_size):
        return SimpleNamespace(log_dir=str(tmp_path), global_rank=rank, world_size=world_size)

    assert prediction_output_path(trainer(0, 1), None, "samples.txt") == tmp_path / "samples.txt"
    assert prediction_output_path(trainer(0, 2), None, "p.csv") == tmp_path / "p.csv"
    assert prediction_output_path(trainer(1, 2), None, "p.csv") == tmp_path / "p.rank1.csv"
    assert prediction_output_path(trainer(3, 4), "out/s.txt", "x.csv") == Path("out/s.rank3.txt")


class FailsOnSecondBatch(Doubler):
    """Predicts the first batch, then fails, remembering the writer's open file."""

    def __init__(self, writer: CSVPredictionWriter) -> None:
        super().__init__()
        self.writer = writer
        self.file = None

    def predict_step(self, batch, batch_idx):
        if batch_idx == 1:
            self.file = self.writer._file
            raise RuntimeError("prediction failed")
        return super().predict_step(batch, batch_idx)


def test_a_failing_prediction_closes_its_file(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(5.0)), 2)
    writer = CSVPredictionWriter(str(tmp_path / "predictions.csv"))
    task = FailsOnSecondBatch(writer)
    trainer = Trainer(callbacks=[writer], logger=False, enable_progress_bar=False)
    with pytest.raises(RuntimeError, match="prediction failed"):
        trainer.predict(task, data, return_predictions=False)
    assert task.file is not None
    assert task.file.closed
    rows = list(csv.reader(writer.path.open()))
    assert rows == [["id", "double"], ["item0", "0.0"], ["item1", "2.0"]]
