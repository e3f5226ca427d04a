"""A test-only callback that records, on every rank, what a multi-process run needs checked:
the weights before and after training, the training and validation order the rank's sampler
gave, the training inputs it saw, and the metrics Lightning ended with.

Give it to ``litlab fit`` as ``--trainer.callbacks+=ddp_probe.DDPProbe
--trainer.callbacks.out_dir DIR`` (tests/helpers on PYTHONPATH); each rank writes
``DIR/rank<global rank>.pt``, read back with :func:`read_probe`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in module.state_dict().items()}


class DDPProbe(Callback):
    """Writes ``rank<r>.pt`` into ``out_dir`` when fit ends."""

    def __init__(self, out_dir: str) -> None:
        """Args:
        out_dir: Folder that receives one file per rank.
        """
        self.out_dir = Path(out_dir)
        self.record: dict[str, Any] = {"train_inputs": []}

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record["initial_state"] = _cpu_state(pl_module)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Under DDP this is Lightning's DistributedSamplerWrapper around the DataModule's
        # sampler; alone, the DataModule's sampler itself. Both give an epoch's whole order.
        self.record["train_order"] = list(_sampler(trainer.train_dataloader))
        self.record["val_order"] = list(_sampler(trainer.val_dataloaders))

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.record["train_inputs"].append(batch[0].detach().cpu().clone())

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record.update(
            state=_cpu_state(pl_module),
            metrics={name: float(value) for name, value in trainer.callback_metrics.items()},
            world_size=trainer.world_size,
            global_step=trainer.global_step,
            run_dir=str(trainer.default_root_dir),
            cluster_environment=_cluster_environment(trainer),
        )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(self.record, self.out_dir / f"rank{trainer.global_rank}.pt")


def _cluster_environment(trainer: Trainer) -> str:
    # Who started the ranks: Lightning (LightningEnvironment), torchrun (TorchElasticEnvironment).
    return type(getattr(trainer.strategy, "cluster_environment", None)).__name__


def probe_args(out_dir: Path) -> list[str]:
    """The ``litlab fit`` arguments that add the probe."""
    return ["--trainer.callbacks+=ddp_probe.DDPProbe", f"--trainer.callbacks.out_dir={out_dir}"]


def read_probe(out_dir: Path, rank: int = 0) -> dict[str, Any]:
    return torch.load(out_dir / f"rank{rank}.pt", weights_only=False)


def _sampler(loader: Any) -> Any:
    """The sampler whose indices the loader batches. A StatefulDataLoader batches through a
    BatchSampler of torchdata's, which Lightning rebuilds around its DistributedSampler,
    leaving the loader's ``sampler`` the sequential one over the whole set."""
    return getattr(loader.batch_sampler, "sampler", None) or loader.sampler
