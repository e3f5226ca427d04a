"""Callbacks any litlab task can use."""

from litlab.core.callbacks.prediction_writer import CSVPredictionWriter

__all__ = ["CSVPredictionWriter"]
