"""litlab keys its tokenised caches by ``Dataset._fingerprint``, a private attribute of the
datasets library (its own content hash; there is no public accessor). litlab-nlp bounds datasets
below the next major version; this test fails first if the attribute moves or changes meaning."""

import datasets


def test_a_dataset_has_a_fingerprint_that_follows_its_content():
    one = datasets.Dataset.from_dict({"text": ["a", "b"]})
    same = datasets.Dataset.from_dict({"text": ["a", "b"]})
    other = datasets.Dataset.from_dict({"text": ["a", "c"]})
    assert isinstance(one._fingerprint, str)
    assert one._fingerprint
    assert one._fingerprint == same._fingerprint
    assert one._fingerprint != other._fingerprint
    assert one.map(lambda row: {"n": len(row["text"])})._fingerprint != one._fingerprint
