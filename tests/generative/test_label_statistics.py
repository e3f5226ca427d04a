"""PredictedLabelStatistics against hand-made probability tables."""

import math

import pytest
import torch

from litlab.generative.metrics.label_statistics import PredictedLabelStatistics

# Four images, three classes: labels 0, 0, 1, 2; top probabilities 0.95, 0.9, 0.6, 0.91.
TABLE = torch.tensor(
    [
        [0.95, 0.03, 0.02],
        [0.90, 0.05, 0.05],
        [0.30, 0.60, 0.10],
        [0.04, 0.05, 0.91],
    ]
)


def statistics(probabilities, num_classes=3, threshold=0.9):
    metric = PredictedLabelStatistics(num_classes, threshold)
    metric.update(probabilities)
    return metric.compute()


def test_confident_share_histogram_and_entropy_by_hand():
    result = statistics(TABLE)
    # Above 0.9, strictly: 0.95 and 0.91, not 0.9.
    assert result["confident_share"].item() == pytest.approx(2 / 4)
    assert result["label_histogram"].tolist() == pytest.approx([0.5, 0.25, 0.25])
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert result["label_entropy"].item() == pytest.approx(entropy / math.log(3))


def test_label_entropy_is_one_when_even_and_zero_when_collapsed():
    even = torch.eye(4)  # each class once, fully confident
    assert statistics(even, num_classes=4)["label_entropy"].item() == pytest.approx(1.0)
    assert statistics(even, num_classes=4)["confident_share"].item() == pytest.approx(1.0)
    collapsed = torch.tensor([[0.2, 0.7, 0.1]]).repeat(5, 1)
    result = statistics(collapsed)
    assert result["label_entropy"].item() == pytest.approx(0.0)
    assert result["label_histogram"].tolist() == [0.0, 1.0, 0.0]
    assert result["confident_share"].item() == 0.0


def test_batches_add_up_to_the_whole_table():
    metric = PredictedLabelStatistics(3)
    for row in TABLE.split(1):
        metric.update(row)
    whole = statistics(TABLE)
    for key, value in metric.compute().items():
        torch.testing.assert_close(value, whole[key])


def test_wrong_shapes_and_empty_state_are_refused():
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        PredictedLabelStatistics(3).update(torch.rand(2, 4))
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),
        pytest.raises(ValueError, match="seen no images"),
    ):
        PredictedLabelStatistics(3).compute()
