"""Write the texts that ``predict_step`` generates to one text file."""

from __future__ import annotations

from typing import Any

from litlab.core.callbacks import FilePredictionWriter

SEPARATOR = "-" * 40


class TextSampleWriter(FilePredictionWriter):
    """Writes the ``text`` entries of what ``predict_step`` returns (one string per sample) to
    ``output`` (default ``samples.txt`` in the run folder), each followed by a line of dashes,
    in the order of the prompts.

    Under several processes each rank writes its own file (``samples.rank1.txt``, ...).
    """

    default_output = "samples.txt"
    written = "Generated text"

    def write_batch(self, prediction: Any) -> None:
        file = self.open_file(encoding="utf-8")
        for text in prediction["text"]:
            file.write(f"{text}\n{SEPARATOR}\n")
        # Flushed per batch: long generations show up while the run goes on.
        file.flush()
