"""Write what ``predict_step`` returns to a CSV file, one row per sample."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class CSVPredictionWriter(BasePredictionWriter):
    """Writes the dicts returned by ``predict_step`` (one value or one row per sample under each
    key) to ``output``; columns in the order of the first batch's keys.

    Under several processes each rank writes its own file (``predictions.rank1.csv``, ...).
    """

    def __init__(self, output: str | None = None) -> None:
        """Args:
        output: CSV file to write; default ``predictions.csv`` in the run folder.
        """
        super().__init__(write_interval="batch")
        self.output = output
        self._path: Path | None = None
        self._writer: Any = None
        self._file: Any = None

    @property
    def path(self) -> Path | None:
        """The file written by the last prediction run."""
        return self._path

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        self._path = prediction_output_path(trainer, self.output, "predictions.csv")

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        columns = {key: _as_list(value) for key, value in prediction.items()}
        if self._writer is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(list(columns))
        self._writer.writerows(zip(*columns.values(), strict=True))

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None
            log.info("Predictions written to %s", self._path)


def prediction_output_path(trainer: Trainer, output: str | None, default_name: str) -> Path:
    """The file a prediction writer writes: ``output``, else ``default_name`` in the run
    folder; under several processes, rank N > 0 gets ``<name>.rankN<suffix>`` beside it."""
    path = Path(output) if output else Path(trainer.log_dir or ".") / default_name
    if trainer.world_size > 1 and trainer.global_rank > 0:
        path = path.with_suffix(f".rank{trainer.global_rank}{path.suffix}")
    return path


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    return list(value)
