"""How long a run took and how much memory it needed, next to its metrics."""

from __future__ import annotations

import logging
import sys
import time

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)

MIB = 2**20


def peak_process_rss_bytes() -> int | None:
    """The peak resident set size of this process since it started (None where the platform
    has no ``resource`` module, i.e. Windows).

    It covers this process only: DataLoader worker processes are not included. It cannot be
    reset, so it is the peak of everything the process did before, too.
    """
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


class ResourceReport(Callback):
    """Records the wall time of ``fit``, ``test``, ``validate`` and ``predict`` and the peak
    memory, and reports them at the end of each to the litlab log and to the loggers.

    Keys (``<stage>`` is fit, test, ...): ``resources/<stage>_time_s``;
    ``resources/<stage>_peak_cuda_mib`` (``torch.cuda.max_memory_allocated``: tensors only,
    not the allocator's cache, reset when the stage starts) when training on CUDA; and
    ``resources/peak_process_rss_mib``, the process's peak resident memory (CPU RAM, all of
    the process's life so far; on a GPU run it holds the CUDA context and host copies).
    Loggers get them as metrics, so W&B shows them in the run summary.
    """

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}
        self.results: dict[str, float] = {}

    # ----- hooks

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start("fit", trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._report("fit", trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start("test", trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._report("test", trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Inside fit the validation loops are part of fit's time.
        if trainer.state.fn == "validate":
            self._start("validate", trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._report("validate", trainer)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start("predict", trainer)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._report("predict", trainer)

    # ----- measuring

    def _start(self, stage: str, trainer: Trainer) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self._started[stage] = time.perf_counter()

    def _report(self, stage: str, trainer: Trainer) -> None:
        started = self._started.pop(stage, None)
        if started is None:
            return
        results = {f"resources/{stage}_time_s": time.perf_counter() - started}
        device = trainer.strategy.root_device
        if device.type == "cuda":
            results[f"resources/{stage}_peak_cuda_mib"] = (
                torch.cuda.max_memory_allocated(device) / MIB
            )
        rss = peak_process_rss_bytes()
        if rss is not None:
            results["resources/peak_process_rss_mib"] = rss / MIB
        self.results.update(results)
        if trainer.is_global_zero:
            log.info("%s resources: %s", stage, _describe(results))
        for logger in trainer.loggers:
            logger.log_metrics(results, step=trainer.global_step)


def _describe(results: dict[str, float]) -> str:
    parts = []
    for key, value in results.items():
        name = key.split("/", 1)[1]
        if name.endswith("_time_s"):
            parts.append(f"wall time {_duration(value)}")
        elif name.endswith("_cuda_mib"):
            parts.append(f"peak CUDA memory allocated {value:,.0f} MiB")
        else:
            parts.append(f"peak process RSS {value:,.0f} MiB")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes)} min {seconds:.1f} s" if minutes else f"{seconds:.1f} s"
