"""Hugging Face folders beside Lightning checkpoints: the peft adapter of a LoRA run, or the
whole model (with its tokenizer) of a full run, ready for ``from_pretrained``."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch import Callback, LightningModule, Trainer

from litlab.core.data_facts import data_facts_of

log = logging.getLogger(__name__)

# The task attribute that holds the exported network.
MODEL_ATTRIBUTE = "network"


class HFExport(Callback):
    """Beside every checkpoint ``<name>.ckpt`` that is saved, writes ``<name>-adapter/`` (the
    adapter alone: ``adapter_config.json`` and ``adapter_model.safetensors``) when the model
    has an adapter, or ``<name>-hf/`` (the model's ``save_pretrained`` folder and the
    DataModule's tokenizer) when it has none; a removed checkpoint takes its folder with it.

    ``publish_dir`` also copies the final best (else last) export to a fixed folder at the end
    of training, so that a later config can name the result of this run (e.g. as the base
    model of a fine-tuning run). The task's ``network`` needs ``save_pretrained(path, tokenizer,
    state_dict)`` and ``is_adapted``, as :class:`~litlab.nlp.models.hf_causal_lm.HFCausalLM`
    has; other models are not exported. The weights written are the checkpoint's, so the
    export is the same under FSDP, where the live weights are shards.
    """

    def __init__(self, publish_dir: str | None = None) -> None:
        """Args:
        publish_dir: Folder that receives a copy of the best (else the last) export when
            training ends (replaced if it exists); None: exports stay beside the checkpoints.
        """
        self.publish_dir = publish_dir
        self._inner_io: CheckpointIO | None = None

    @staticmethod
    def export_dir(checkpoint_path: str | Path, adapted: bool) -> Path:
        """The folder exported beside ``checkpoint_path``."""
        path = Path(checkpoint_path)
        return path.with_name(f"{path.stem}-{'adapter' if adapted else 'hf'}")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        model = getattr(pl_module, MODEL_ATTRIBUTE, None)
        if stage != "fit" or self._inner_io is not None:
            return
        if not hasattr(model, "save_pretrained") or not hasattr(model, "is_adapted"):
            log.warning(
                "HFExport: %s has no save_pretrained(); no Hugging Face folder is written.",
                type(model).__name__,
            )
            return
        # Checkpoint files are written and removed through the strategy's CheckpointIO, the
        # one place that sees each file's path; wrapping it keeps every ModelCheckpoint
        # setting (names, top-k, last) as configured.
        self._inner_io = trainer.strategy.checkpoint_io
        trainer.strategy.checkpoint_io = _ExportingCheckpointIO(
            self._inner_io,
            on_save=lambda checkpoint, path: self._export(trainer, model, checkpoint, path),
        )

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._inner_io is not None:
            trainer.strategy.checkpoint_io = self._inner_io
            self._inner_io = None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.publish_dir is None or self._inner_io is None:
            return
        checkpoint = trainer.checkpoint_callback
        source_ckpt = checkpoint and (checkpoint.best_model_path or checkpoint.last_model_path)
        if not source_ckpt or not trainer.is_global_zero:
            return
        source = self.export_dir(source_ckpt, pl_module.network.is_adapted)
        target = Path(self.publish_dir)
        _replace_dir(target, lambda tmp: shutil.copytree(source, tmp))
        log.info("Published %s to %s", source, target)

    def _export(
        self, trainer: Trainer, model: Any, checkpoint: dict[str, Any], checkpoint_path: str | Path
    ) -> None:
        target = self.export_dir(checkpoint_path, model.is_adapted)
        tokenizer = None if model.is_adapted else data_facts_of(trainer.datamodule).tokenizer
        # The weights come from the checkpoint being written, not from the live model: only
        # rank 0 gets here, and under FSDP the live weights are shards that every rank would
        # have to gather together (the checkpoint's are gathered already).
        state = {
            name.removeprefix(f"{MODEL_ATTRIBUTE}."): tensor
            for name, tensor in checkpoint["state_dict"].items()
            if name.startswith(f"{MODEL_ATTRIBUTE}.")
        }
        _replace_dir(target, lambda tmp: model.save_pretrained(tmp, tokenizer, state_dict=state))
        log.debug("Exported %s", target)


class _ExportingCheckpointIO(CheckpointIO):
    """Delegates to ``inner``, and exports beside every checkpoint it saves."""

    def __init__(
        self, inner: CheckpointIO, on_save: Callable[[dict[str, Any], str | Path], None]
    ) -> None:
        self.inner = inner
        self.on_save = on_save

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)
        self.on_save(checkpoint, path)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.inner.load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)
        for adapted in (True, False):
            shutil.rmtree(HFExport.export_dir(path, adapted), ignore_errors=True)

    def teardown(self) -> None:
        self.inner.teardown()


def _replace_dir(target: Path, write: Callable[[Path], Any]) -> None:
    """Writes a folder next to ``target`` and only then replaces it, so an interrupted save
    never leaves a half-written export in its place."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    write(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
