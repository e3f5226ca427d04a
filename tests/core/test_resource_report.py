"""ResourceReport: wall time and peak memory of fit/test, to the log and the loggers."""

import logging

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import Logger

from litlab.core.callbacks import ResourceReport
from litlab.core.callbacks.resource_report import peak_process_rss_bytes


class Recorder(Logger):
    name = "recorder"
    version = 0

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)

    def log_hyperparams(self, params, *args, **kwargs):
        pass


class Tiny(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def test_step(self, batch, batch_idx):
        self.log("test/loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), 4)


def test_fit_and_test_report_time_and_peak_memory(tmp_path, caplog):
    report, recorder = ResourceReport(), Recorder()
    trainer = Trainer(
        max_epochs=2,
        callbacks=[report],
        logger=recorder,
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    with caplog.at_level(logging.INFO, logger="litlab"):
        trainer.fit(Tiny(), loader())
        trainer.test(trainer.lightning_module, loader())
    for key in ("resources/fit_time_s", "resources/test_time_s"):
        assert 0 < recorder.metrics[key] < 60
    # On CPU the memory is the process's peak RSS, in MiB: more than Python and torch alone.
    assert recorder.metrics["resources/peak_process_rss_mib"] > 50
    assert not any("cuda" in key for key in recorder.metrics)
    assert report.results.items() <= recorder.metrics.items()
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("fit resources: wall time") and "peak process RSS" in m for m in messages
    )


def test_peak_rss_grows_with_a_large_allocation():
    before = peak_process_rss_bytes()
    block = torch.ones(64 * 2**20, dtype=torch.uint8)  # touched, so resident
    assert peak_process_rss_bytes() >= before
    assert peak_process_rss_bytes() >= block.numel()
