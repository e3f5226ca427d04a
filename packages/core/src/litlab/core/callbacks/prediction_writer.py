"""Write what ``predict_step`` returns into the run folder: the base every prediction writer
shares, and the CSV writer of the classifiers."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class FilePredictionWriter(BasePredictionWriter):
    """Writes what ``predict_step`` returns, batch by batch, to ``output``: by default
    ``default_output`` in the run folder (``predictions.csv``, ``samples.txt``, ...).

    A subclass writes each batch in :meth:`write_batch`, into the file :meth:`open_file` gives
    (opened on first use). The file is closed when prediction ends and also when it
    fails, so what was written before the error is kept. Under several processes each rank
    writes its own file (``predictions.rank1.csv``, ...), unless ``output_per_rank`` is off (a
    folder that all ranks share).
    """

    default_output: ClassVar[str]
    output_per_rank: ClassVar[bool] = True
    # What the file holds, for the log line at the end ("Predictions written to ...").
    written: ClassVar[str] = "Predictions"

    def __init__(self, output: str | None = None) -> None:
        """Args:
        output: File (or folder) to write; default the writer's own name in the run folder.
        """
        super().__init__(write_interval="batch")
        self.output = output
        self._path: Path | None = None
        self._file: IO[str] | None = None

    @property
    def path(self) -> Path | None:
        """The file (or folder) written by the last prediction run."""
        return self._path

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        # trainer.log_dir broadcasts, so every rank reads it here, not in a rank-zero branch.
        self._path = prediction_output_path(
            trainer, self.output, self.default_output, per_rank=self.output_per_rank
        )

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
        self.write_batch(prediction)

    def write_batch(self, prediction: Any) -> None:
        """Write what ``predict_step`` returned for one batch."""
        raise NotImplementedError

    def open_file(self, **options: Any) -> IO[str]:
        """The output file, opened for writing (``options`` go to ``open``) on first use."""
        if self._file is None:
            if self._path is None:
                raise RuntimeError("open_file() is for predict_step, after setup")
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("w", **options)
        return self._file

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._close():
            log.info("%s written to %s", self.written, self._path)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        # A failed run never reaches on_predict_end; what it wrote is still flushed and closed.
        self._close()

    def _close(self) -> bool:
        if self._file is None:
            return False
        self._file.close()
        self._file = None
        return True


class CSVPredictionWriter(FilePredictionWriter):
    """Writes the dicts returned by ``predict_step`` (one value or one row per sample under each
    key) to ``output``; columns in the order of the first batch's keys.

    Under several processes each rank writes its own file (``predictions.rank1.csv``, ...).
    """

    default_output = "predictions.csv"

    def write_batch(self, prediction: Any) -> None:
        columns = {key: _as_list(value) for key, value in prediction.items()}
        first = self._file is None
        writer = csv.writer(self.open_file(newline=""))
        if first:
            writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))


def prediction_output_path(
    trainer: Trainer, output: str | None, default_name: str, per_rank: bool = True
) -> Path:
    """The file a prediction writer writes: ``output``, else ``default_name`` in the run
    folder; under several processes and with ``per_rank``, rank N > 0 gets
    ``<name>.rankN<suffix>`` beside it."""
    path = Path(output) if output else Path(trainer.log_dir or ".") / default_name
    if per_rank and trainer.world_size > 1 and trainer.global_rank > 0:
        path = path.with_suffix(f".rank{trainer.global_rank}{path.suffix}")
    return path


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    return list(value)
