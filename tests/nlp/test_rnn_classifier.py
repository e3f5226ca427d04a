"""The recurrent classifier: shapes, padding invariance, word vectors."""

import pytest
import torch

from litlab.core.errors import LitlabError
from litlab.nlp.models.rnn_classifier import RNNClassifier

VOCAB = {"[PAD]": 0, "[UNK]": 1, "good": 2, "bad": 3, "film": 4, "the": 5}


def tiny(**options) -> RNNClassifier:
    torch.manual_seed(0)
    defaults = {"vocab_size": 6, "embed_dim": 4, "hidden_size": 5, "num_classes": 3}
    return RNNClassifier(**{**defaults, **options}).eval()


def padded(sequences: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, sequence in enumerate(sequences):
        ids[i, : len(sequence)] = torch.tensor(sequence)
        mask[i, : len(sequence)] = 1
    return ids, mask


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_logits_do_not_depend_on_the_padding(cell, bidirectional, pooling):
    model = tiny(cell=cell, bidirectional=bidirectional, pooling=pooling, num_layers=2)
    text = [5, 2, 4]
    alone = model(*padded([text], 3))
    with_padding = model(*padded([text], 9))
    beside_a_longer_text = model(*padded([[3, 3, 4, 5, 2, 2, 1], text], 7))[1:]
    torch.testing.assert_close(with_padding, alone)
    torch.testing.assert_close(beside_a_longer_text, alone)
    assert alone.shape == (1, 3)


def test_mask_defaults_to_non_padding_ids_and_empty_texts_work():
    model = tiny()
    ids, mask = padded([[2, 4], []], 4)
    torch.testing.assert_close(model(ids), model(ids, mask))
    assert torch.isfinite(model(ids, mask)).all()


def test_unknown_cell():
    with pytest.raises(LitlabError, match="cell"):
        tiny(cell="transformer")


def write_vectors(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_word_vectors_fill_the_vocabulary_rows(tmp_path):
    vectors = write_vectors(
        tmp_path / "glove.txt",
        [
            "good 1 2 3 4",
            "Film 5 6 7 8",  # taken for "film" (no exact entry)
            "film 9 9 9 9",  # the exact entry wins
            "new york 0.5 0.5 0.5 0.5",  # GloVe 840B has words with spaces
            "absent 1 1 1 1",
        ],
    )
    model = tiny(pretrained_vectors=vectors, freeze_embeddings=True)
    assert model.load_word_vectors({**VOCAB, "new york": 1}) == 3
    weight = model.embedding.weight
    assert weight[2].tolist() == [1, 2, 3, 4]
    assert weight[4].tolist() == [9, 9, 9, 9]
    assert weight[1].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert weight[0].tolist() == [0, 0, 0, 0]  # padding stays zero
    assert not weight.requires_grad


def test_word2vec_header_is_skipped(tmp_path):
    vectors = write_vectors(tmp_path / "w2v.txt", ["2 4", "bad 1 1 1 1", "the 2 2 2 2"])
    model = tiny(pretrained_vectors=vectors)
    assert model.load_word_vectors(VOCAB) == 2
    assert model.embedding.weight.requires_grad


def test_word_vector_errors(tmp_path):
    with pytest.raises(LitlabError, match="word-vector file not found"):
        tiny(pretrained_vectors=str(tmp_path / "none.txt")).load_word_vectors(VOCAB)
    vectors = write_vectors(tmp_path / "glove.50d.txt", ["good 1 2 3"])
    with pytest.raises(LitlabError, match="embed_dim=4"):
        tiny(pretrained_vectors=vectors).load_word_vectors(VOCAB)
    vectors = write_vectors(tmp_path / "glove.5d.txt", ["good 1 2 3 4 5"])
    with pytest.raises(LitlabError, match="embed_dim=4"):
        tiny(pretrained_vectors=vectors).load_word_vectors(VOCAB)


def test_word_dropout_replaces_words_by_unknown_only_while_training():
    model = tiny(word_dropout=1.0, dropout=0.0)
    ids, mask = padded([[5, 2, 4], [3]], 3)
    unknown, _ = padded([[1, 1, 1], [1]], 3)
    eval_logits = model(ids, mask)
    model.train()
    torch.testing.assert_close(model(ids, mask), model(unknown, mask))
    model.eval()
    torch.testing.assert_close(model(ids, mask), eval_logits)
