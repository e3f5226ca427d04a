"""check_class_labels refuses exactly the labels that cross-entropy cannot take."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litlab.core.class_labels import check_class_labels
from litlab.core.errors import LitlabError

NUM_CLASSES = 4


@pytest.mark.parametrize(
    "labels", [[0, 1, 2, 3], [3, 3], [0, 4, 1], [-1, 0], [0, 1, 7, 9, -3]], ids=str
)
def test_refused_exactly_where_cross_entropy_fails(labels):
    targets = torch.tensor(labels)
    try:
        F.cross_entropy(torch.zeros(len(labels), NUM_CLASSES), targets)
        cross_entropy_takes_them = True
    except (IndexError, RuntimeError):
        cross_entropy_takes_them = False
    if cross_entropy_takes_them:
        check_class_labels(targets, NUM_CLASSES, "train", 0)
    else:
        with pytest.raises(LitlabError):
            check_class_labels(targets, NUM_CLASSES, "train", 0)


def test_message_names_the_batch_the_sample_and_the_label():
    with pytest.raises(LitlabError) as info:
        check_class_labels(torch.tensor([0, 1, 7, 9, -3]), NUM_CLASSES, "val", 12)
    assert str(info.value).startswith(
        "val batch 12: sample 2 of the batch has label 7, outside 0..3 (num_classes=4; "
        "3 bad label(s) in this batch)."
    )


def test_soft_labels_are_not_class_indices():
    check_class_labels(torch.full((2, NUM_CLASSES), 0.25), NUM_CLASSES, "train", 0)
