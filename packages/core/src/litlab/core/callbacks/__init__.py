"""Callbacks any litlab task can use."""

from litlab.core.callbacks.last_checkpoint import LastCheckpoint
from litlab.core.callbacks.non_finite_loss_guard import NonFiniteLossGuard
from litlab.core.callbacks.prediction_writer import CSVPredictionWriter, FilePredictionWriter
from litlab.core.callbacks.preemption_checkpoint import PreemptionCheckpoint
from litlab.core.callbacks.resource_report import ResourceReport
from litlab.core.callbacks.resume_state import ResumeState

__all__ = [
    "CSVPredictionWriter",
    "FilePredictionWriter",
    "LastCheckpoint",
    "NonFiniteLossGuard",
    "PreemptionCheckpoint",
    "ResourceReport",
    "ResumeState",
]
