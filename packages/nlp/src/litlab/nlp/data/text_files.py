"""Text data files read with ``datasets``: how each file suffix is read, for every NLP
DataModule that takes files (one table, so that a CSV is read alike for classification and
for language modelling)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

# Suffix -> datasets builder and its options. Missing-value detection is off: a sentence such
# as "null" or "NA" is text, not a missing value. TSV is read with quoting off: TSV corpora
# (GLUE's SST-2 among them) hold unmatched quote characters that would otherwise swallow the
# lines after them.
FILE_READERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {"na_filter": False}),
    ".tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
    ".txt": ("text", {}),
    ".text": ("text", {}),
}


def read_text_files(
    paths: Sequence[Path],
    cache_dir: str | os.PathLike[str] | None,
    keep_linebreaks: bool,
) -> datasets.Dataset:
    """The rows of ``paths`` (all of one suffix in :data:`FILE_READERS`) as one dataset.

    Args:
        paths: The files, read in order.
        cache_dir: The ``datasets`` cache; None: its default.
        keep_linebreaks: Plain text only: each line keeps its line break, so that concatenated
            rows give back the file's text (a corpus), rather than being one text each.
    """
    builder, options = FILE_READERS[paths[0].suffix.lower()]
    if builder == "text":
        options = {**options, "keep_linebreaks": keep_linebreaks}
    return datasets.load_dataset(
        builder,
        data_files=[str(path) for path in paths],
        split="train",
        cache_dir=cache_dir,
        **options,
    )
