"""Every NLP test runs from an empty directory: prediction writers, tokenizer caches and run
folders that default to the working directory never land in the repository."""

import pytest


@pytest.fixture(autouse=True)
def _scratch_working_dir(in_tmp_dir):
    return in_tmp_dir
