"""A recurrent text classifier: word embeddings, an LSTM or GRU over the packed
variable-length sequences, a linear layer on the pooled states."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from litlab.core.errors import LitlabError
from litlab.core.number_types import NonNegativeInt, PositiveInt, RightOpenUnitInterval

log = logging.getLogger(__name__)


class RNNClassifier(nn.Module):
    """Token ids (B, T) and their attention mask -> class logits (B, num_classes).

    Sequences are packed (``pack_padded_sequence``), so the recurrence stops at each text's
    last token: a text's logits do not depend on how much padding its batch has. Padding is on
    the right (as TextClassificationDataModule pads).

    ``pretrained_vectors`` names a word-vector text file (GloVe's format: a word and its
    numbers per line; a word2vec header line is skipped; ``.gz`` is fine). The vectors need the
    tokenizer's vocabulary: TextClassifier hands it over with :meth:`load_word_vectors` when
    fitting starts. Words without a vector keep a random one of the vectors' scale.
    """

    def __init__(
        self,
        vocab_size: PositiveInt,
        num_classes: PositiveInt = 2,
        embed_dim: PositiveInt = 300,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 1,
        cell: Literal["lstm", "gru"] = "lstm",
        bidirectional: bool = True,
        dropout: RightOpenUnitInterval = 0.5,
        pooling: Literal["last", "max", "mean"] = "last",
        word_dropout: RightOpenUnitInterval = 0.0,
        padding_idx: NonNegativeInt = 0,
        unknown_idx: NonNegativeInt = 1,
        pretrained_vectors: str | None = None,
        freeze_embeddings: bool = False,
    ) -> None:
        """Args:
        vocab_size: Rows of the embedding table; at least the tokenizer's vocabulary size
            (TextClassificationDataModule's word tokenizer has ``vocab_size`` words).
        num_classes: Number of classes.
        embed_dim: Word embedding size (the vectors' size with ``pretrained_vectors``: 300
            for GloVe 840B).
        hidden_size: RNN state size per direction.
        num_layers: Stacked RNN layers.
        cell: ``lstm`` or ``gru``.
        bidirectional: Also read each text right to left; the two directions' states are
            concatenated.
        dropout: Dropout on the embeddings, between RNN layers and before the output layer.
        pooling: What the output layer sees: ``last`` state of each direction (Tai et al.
            2015), or the ``max`` or ``mean`` of the states over the text's tokens.
        word_dropout: While training, replace each word by the unknown token with this
            probability. Without it the unknown token's embedding never trains when every
            training word is in the vocabulary, yet words unseen in training map to it.
        padding_idx: Id of the padding token (its embedding stays zero).
        unknown_idx: Id of the unknown-word token (the word-level tokenizer's ``[UNK]``).
        pretrained_vectors: Word-vector text file (GloVe format) to start the embeddings from.
        freeze_embeddings: Keep the embeddings fixed (with pretrained vectors).
        """
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise LitlabError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.vocab_size = vocab_size
        self.padding_idx = padding_idx
        self.unknown_idx = unknown_idx
        self.word_dropout = word_dropout
        self.pooling = pooling
        self.pretrained_vectors = pretrained_vectors
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = input_ids != self.padding_idx
        # An empty text still gets one (padding) step, as packing refuses length 0.
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(input_ids.shape, device=input_ids.device) < self.word_dropout
            input_ids = input_ids.masked_fill(dropped & attention_mask.bool(), self.unknown_idx)
        embedded = self.dropout(self.embedding(input_ids))
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, state = self.rnn(packed)
        if self.pooling == "last":
            hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            # The top layer's final state of each direction; backward's is at the first token.
            directions = 2 if self.rnn.bidirectional else 1
            features = torch.cat(list(hidden[-directions:]), dim=-1)
        else:
            fill = float("-inf") if self.pooling == "max" else 0.0
            padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=fill)
            if self.pooling == "max":
                features = padded.max(dim=1).values
            else:
                features = padded.sum(dim=1) / lengths.to(padded.dtype).unsqueeze(-1)
        return self.head(self.dropout(features))

    def load_word_vectors(self, vocab: Mapping[str, int]) -> int:
        """Copy ``pretrained_vectors`` into the embedding rows of ``vocab``'s words (token ->
        id, e.g. ``tokenizer.get_vocab()``); returns how many words got a vector.

        A word missing from the file takes the vector of its lowercase form, if there is one.
        """
        if self.pretrained_vectors is None:
            return 0
        path = Path(self.pretrained_vectors).expanduser()
        if not path.is_file():
            raise LitlabError(
                f"word-vector file not found: {path}. Give pretrained_vectors a GloVe-format "
                f"text file (e.g. glove.840B.300d.txt from https://nlp.stanford.edu/projects/"
                f"glove/), or null to start from random embeddings."
            )
        weight = self.embedding.weight
        dim = weight.shape[1]
        exact: set[int] = set()
        found: dict[int, list[str]] = {}
        for parts in _read_lines(path):
            if len(parts) <= dim or (len(parts) > dim + 1 and _is_number(parts[-dim - 1])):
                raise LitlabError(
                    f"{path} holds vectors of another size than embed_dim={dim} (a line has "
                    f"{len(parts) - 1} numbers). Set the model's embed_dim to the vectors' size."
                )
            # Some GloVe 840B "words" contain spaces: the vector is the last dim fields.
            word = " ".join(parts[:-dim])
            index = vocab.get(word)
            if index is not None:
                exact.add(index)
            else:
                index = vocab.get(word.lower())
                if index is None or index in exact or index in found:
                    continue
            if index < weight.shape[0] and index != self.padding_idx:
                found[index] = parts[-dim:]
        if not found:
            log.warning("%s has a vector for none of the %d words", path, len(vocab))
            return 0
        indices = torch.tensor(list(found))
        vectors = torch.tensor([[float(v) for v in values] for values in found.values()])
        with torch.no_grad():
            # Random rows at the vectors' scale, not nn.Embedding's N(0, 1), which is several
            # times larger than GloVe's and would dominate the sum of a sentence's words.
            weight.normal_(0.0, vectors.std().item())
            weight[indices] = vectors.to(weight.dtype)
            weight[self.padding_idx].zero_()
        log.info(
            "Word vectors from %s for %d of %d words (%.1f%%)",
            path,
            len(found),
            len(vocab),
            100.0 * len(found) / max(len(vocab), 1),
        )
        return len(found)


def _read_lines(path: Path) -> Iterator[list[str]]:
    """The space-separated fields of each vector line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's "<count> <dim>" header
            if len(parts) > 1:
                yield parts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
