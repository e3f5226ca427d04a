"""Write the texts that ``predict_step`` generates to one text file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from litlab.core.callbacks.prediction_writer import prediction_output_path

log = logging.getLogger(__name__)

SEPARATOR = "-" * 40


class TextSampleWriter(BasePredictionWriter):
    """Writes the ``text`` entries of what ``predict_step`` returns (one string per sample) to
    ``output``, each followed by a line of dashes, in the order of the prompts.

    Under several processes each rank writes its own file (``samples.rank1.txt``, ...).
    """

    def __init__(self, output: str | None = None) -> None:
        """Args:
        output: Text file to write; default ``samples.txt`` in the run folder.
        """
        super().__init__(write_interval="batch")
        self.output = output
        self._path: Path | None = None
        self._file: IO[str] | None = None

    @property
    def path(self) -> Path | None:
        """The file written by the last prediction run."""
        return self._path

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        self._path = prediction_output_path(trainer, self.output, "samples.txt")

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
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("w", encoding="utf-8")
        for text in prediction["text"]:
            self._file.write(f"{text}\n{SEPARATOR}\n")
        # Flushed per batch: long generations show up while the run goes on.
        self._file.flush()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            log.info("Generated text written to %s", self._path)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # A failed run never reaches on_predict_end; what it wrote is still closed.
        if self._file is not None:
            self._file.close()
            self._file = None
