"""A text file that cannot be used is named, with why: empty, not UTF-8, cut inside a
character."""

from __future__ import annotations

import pytest

from litlab.core.errors import LitlabError
from litlab.nlp.data.char_text import CharTextDataModule


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"", "is empty"),
        ("caf\u00e9 society\n".encode("latin-1") * 20, "is not UTF-8 text: the bytes at offset 3"),
        ("na\u00efve\n".encode() * 40 + "\u00e9".encode()[:1], "(unexpected end of data)"),
    ],
    ids=["empty", "latin-1", "truncated in a character"],
)
def test_unusable_text_file_is_named(tmp_path, content, named):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(LitlabError) as info:
        CharTextDataModule(text_file=str(path), block_size=8).setup("fit")
    assert str(info.value).startswith(str(path))
    assert named in str(info.value)
