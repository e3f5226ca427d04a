"""Callbacks any litlab task can use."""

from litlab.core.callbacks.last_checkpoint import LastCheckpoint
from litlab.core.callbacks.prediction_writer import CSVPredictionWriter
from litlab.core.callbacks.resource_report import ResourceReport

__all__ = ["CSVPredictionWriter", "LastCheckpoint", "ResourceReport"]
