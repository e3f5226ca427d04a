"""What a ``litlab`` command prints beside its own messages: Lightning's, made quiet and
narrow.

Lightning 2.6 on this torch prints, in every run, a FutureWarning of its own use of torch's
``LeafSpec``, advertisements for litlogger and litmodels, and (on ``validate``, ``test`` and
``predict``, whose run folder is never the checkpoint's) that ModelCheckpoint's folder has
changed. Its model summary has a FLOPs column, zero unless the model sets
``example_input_array``, and its table of evaluation metrics cuts or wraps long metric names
at 80 columns. Each is silenced by its own message and source, nothing else: other warnings
and Lightning's other messages still show. :class:`ConsoleCLI` is the base of litlab's LightningCLI.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.model_summary import get_human_readable_count

# Emitted through these loggers' ``rank_zero_info`` (Lightning's and Fabric's copies).
LIGHTNING_INFO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
TIP_PREFIX = "💡 Tip:"


class _NoTips(logging.Filter):
    """Drops Lightning's advertisements (litlogger, litmodels), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


_NO_TIPS = _NoTips()


def quiet_lightning() -> None:
    """Silences the messages every command would print; safe to call more than once."""
    # Lightning's own code (not litlab's) builds a LeafSpec; only a Lightning release can fix it.
    warnings.filterwarnings(
        "ignore",
        message=re.escape("`isinstance(treespec, LeafSpec)` is deprecated"),
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )
    for name in LIGHTNING_INFO_LOGGERS:
        logging.getLogger(name).addFilter(_NO_TIPS)


def quiet_checkpoint_folder() -> None:
    """An evaluating command writes its own run folder, so the checkpoint's ModelCheckpoint
    state always names another folder; Lightning warns of that as if it were a resumed fit.
    (A resumed fit keeps the warning: there it means the checkpoint was moved.)"""
    warnings.filterwarnings(
        "ignore",
        message=re.escape("The dirpath has changed from"),
        module=r"lightning\.pytorch\.callbacks\.model_checkpoint",
    )


class CompactModelSummary(ModelSummary):
    """Lightning's model summary as a plain table, without the FLOPs when they were not
    measured (a model without ``example_input_array``)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        columns = [
            (name, values) for name, values in summary_data if total_flops or name != "FLOPs"
        ]
        header = [name for name, _ in columns]
        rows = [list(row) for row in zip(*(values for _, values in columns), strict=True)]
        totals = [
            (get_human_readable_count(trainable_parameters), "Trainable params"),
            (
                get_human_readable_count(total_parameters - trainable_parameters),
                "Non-trainable params",
            ),
            (get_human_readable_count(total_parameters), "Total params"),
            (f"{model_size:,.3f}", "Total estimated model params size (MB)"),
            (str(total_training_modes["train"]), "Modules in train mode"),
            (str(total_training_modes["eval"]), "Modules in eval mode"),
        ]
        if total_flops:
            totals.append((get_human_readable_count(total_flops), "Total FLOPs"))
        lines = [*render_table(header, rows), *(f"{value:<10}{name}" for value, name in totals)]
        sys.stdout.write("\n".join(lines) + "\n")


def metrics_table(stage: str, metrics: dict[str, Any]) -> list[str]:
    """The lines of an evaluation's metrics table: one row per metric, one column per
    dataloader (Lightning's ``/dataloader_idx_N`` suffix), values to 6 significant digits.
    As wide as its longest metric name plus its values, whatever the terminal."""
    by_loader: dict[int, dict[str, str]] = {}
    shared: dict[str, str] = {}
    for key, value in metrics.items():
        name, _, index = key.partition("/dataloader_idx_")
        (by_loader.setdefault(int(index), {}) if index else shared)[name] = _format(value)
    loaders = [by_loader.get(i, {}) for i in range(max(by_loader, default=0) + 1)]
    names = sorted(set(shared).union(*loaders))
    if not names:
        return []
    values_header = (
        [f"DataLoader {i}" for i in range(len(loaders))] if len(loaders) > 1 else ["value"]
    )
    rows = [
        [name, *(loader.get(name, shared.get(name, "")) for loader in loaders)] for name in names
    ]
    return render_table([f"{stage} metric", *values_header], rows)


def render_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Columns as wide as their widest cell, between vertical bars (ASCII on a terminal that
    cannot show box drawing)."""
    bar, rule, cross = _box_characters()
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return f" {bar} ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    divider = f"{rule}{cross}{rule}".join(rule * width for width in widths)
    return [line(header), divider, *(line(row) for row in rows)]


def _box_characters() -> tuple[str, str, str]:
    try:
        "│─┼".encode(sys.stdout.encoding or "ascii")
    except UnicodeEncodeError:
        return "|", "-", "+"
    return "│", "─", "┼"


def _format(value: Any) -> str:
    if hasattr(value, "numel") and value.numel() == 1:
        value = value.item()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class ConsoleCLI(LightningCLI):
    """LightningCLI with a quiet console: the messages above silenced, the compact model
    summary in place of Lightning's, and litlab's metrics table after ``validate`` and
    ``test`` in place of Lightning's (``--verbose false`` turns it off, as it did Lightning's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        quiet_lightning()
        self.print_metrics = False
        super().__init__(*args, **kwargs)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer_config = {**(config.get("trainer") or {}), **kwargs}
        callbacks = trainer_config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if (
            trainer_config.get("enable_model_summary") is not False
            and not trainer_config.get("barebones")
            and not any(isinstance(callback, ModelSummary) for callback in callbacks)
        ):
            kwargs["callbacks"] = [*callbacks, CompactModelSummary()]
            # Else Lightning adds its own beside it, and says so.
            kwargs["enable_model_summary"] = False
        return super().instantiate_trainer(**kwargs)

    def before_validate(self) -> None:
        self._take_over_metrics_table()

    def before_test(self) -> None:
        self._take_over_metrics_table()

    def before_predict(self) -> None:
        quiet_checkpoint_folder()

    def after_validate(self) -> None:
        self._print_metrics_table("Validate")

    def after_test(self) -> None:
        self._print_metrics_table("Test")

    def _take_over_metrics_table(self) -> None:
        quiet_checkpoint_folder()
        config = self.config_init[self.subcommand]
        self.print_metrics = config.get("verbose", True)
        # The value LightningCLI passes to trainer.validate/test(verbose=...).
        config.verbose = False

    def _print_metrics_table(self, stage: str) -> None:
        if self.print_metrics and self.trainer.is_global_zero:
            lines = metrics_table(stage, dict(self.trainer.callback_metrics))
            sys.stdout.write("".join(f"{line}\n" for line in lines))
