"""MLPClassifier: shapes, size, the forward pass against a hand-written one, dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litlab.vision.models.mlp import MLPClassifier


def test_output_shape():
    torch.manual_seed(0)
    model = MLPClassifier()
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_parameter_count_default():
    model = MLPClassifier()
    expected = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected == 1_863_690
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 1024),
        (1024, 1024),
        (1024, 10),
    ]


def test_forward_matches_hand_computation():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=12, hidden_features=[8, 6], num_classes=3).eval()
    x = torch.randn(4, 3, 2, 2)
    (w1, b1), (w2, b2), (w3, b3) = [
        (m.weight, m.bias) for m in model.modules() if isinstance(m, nn.Linear)
    ]
    h = x.reshape(4, 12)
    h = torch.relu(h @ w1.T + b1)
    h = torch.relu(h @ w2.T + b2)
    expected = h @ w3.T + b3
    torch.testing.assert_close(model(x), expected)


def test_no_hidden_layers_is_linear():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=4, hidden_features=[], num_classes=2)
    (linear,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x = torch.randn(3, 1, 2, 2)
    torch.testing.assert_close(model(x), F.linear(x.flatten(1), linear.weight, linear.bias))


def test_wrong_input_size_raises():
    model = MLPClassifier()
    with pytest.raises(ValueError, match="in_features") as info:
        model(torch.randn(2, 1, 14, 14))
    assert "196" in str(info.value)
    assert "784" in str(info.value)


def test_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=16, hidden_features=[64], num_classes=4, dropout=0.5)
    x = torch.randn(8, 1, 4, 4)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_zero_dropout_train_equals_eval():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=16, hidden_features=[32], num_classes=4, dropout=0.0)
    x = torch.randn(8, 1, 4, 4)
    torch.testing.assert_close(model.train()(x), model.eval()(x))
