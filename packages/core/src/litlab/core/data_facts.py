"""What a DataModule knows about its data, as one typed object: the one way it reaches a task.

A DataModule provides a ``data_facts`` attribute (or property) holding a :class:`DataFacts`;
:func:`data_facts_of` is the only place that looks for it, so tasks and callbacks read
``data_facts_of(trainer.datamodule).classes`` (tasks: ``self.data_facts``) and never probe the
DataModule's attributes one by one. The ``litlab`` command feeds the constructor values among
these facts (``num_classes``, ``in_channels``, ``vocab_size``, ...) to the task and its network
before they are built (see ``litlab.app.data_links``); the run-time objects (a tokenizer, a
character vocabulary) are read from here once the data is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataFacts:
    """What the data knows; ``None`` where it does not know (or has not read it yet).

    Construction values (known when the DataModule is built):
        num_classes: Number of classes of a classification dataset.
        classes: The class names, index order.
        image_shape: ``(C, H, W)`` of the images the loaders give.
        mean, std: Per-channel normalisation the loaders apply, ``(x - mean) / std``.
        pixel_range: ``"standardized"``, ``"unit"`` ([0, 1]) or ``"symmetric"`` ([-1, 1]).
        vocab_size: Tokens of the data's vocabulary (the network's embedding rows).
        block_size: Tokens per training sequence.
        tokenizer_name: The Hugging Face tokenizer (hub name or folder) the data uses.

    Run-time objects (set once the DataModule is set up):
        tokenizer: The tokenizer that encodes the texts.
        vocabulary: A character vocabulary (``len``, ``encode``, ``decode``).
    """

    num_classes: int | None = None
    classes: tuple[str, ...] | None = None
    image_shape: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pixel_range: str | None = None
    vocab_size: int | None = None
    block_size: int | None = None
    tokenizer_name: str | None = None
    tokenizer: Any = None
    vocabulary: Any = None

    @property
    def in_channels(self) -> int | None:
        """Image channels."""
        return self.image_shape[0] if self.image_shape else None

    @property
    def image_size(self) -> int | None:
        """Height and width of square images (None for other shapes)."""
        if not self.image_shape or self.image_shape[1] != self.image_shape[2]:
            return None
        return self.image_shape[1]

    @property
    def in_features(self) -> int | None:
        """Values per image, ``C * H * W`` (the input width of a network on flat pixels)."""
        if not self.image_shape:
            return None
        channels, height, width = self.image_shape
        return channels * height * width


NO_FACTS = DataFacts()


def data_facts_of(datamodule: Any) -> DataFacts:
    """The DataModule's :class:`DataFacts`; an empty one for none, or for a DataModule that
    does not provide them (every field ``None``)."""
    facts = getattr(datamodule, "data_facts", None) if datamodule is not None else None
    return facts if isinstance(facts, DataFacts) else NO_FACTS
