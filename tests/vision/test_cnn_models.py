"""SmallCNN and LeNet5: shapes, hand-computed parameter counts, options, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litlab.vision.models.cnn import SmallCNN
from litlab.vision.models.lenet import LeNet5


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- SmallCNN ---------------------------------------------------------------------------------


def test_small_cnn_output_shape_mnist():
    torch.manual_seed(0)
    assert SmallCNN()(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_small_cnn_parameter_count_default():
    # Convs 1->32->32 and 32->64->64 without bias (BatchNorm follows), 64*7*7 -> 128 -> 10.
    convs = (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 9 + 2 * (32 + 32 + 64 + 64)
    expected = convs + (3136 * 128 + 128) + (128 * 10 + 10)
    assert n_params(SmallCNN()) == expected == 468_010


def test_small_cnn_tutorial_variant_parameter_count():
    model = SmallCNN(convs_per_stage=1)
    expected = (1 * 32 + 32 * 64) * 9 + 2 * (32 + 64) + (3136 * 128 + 128) + (128 * 10 + 10)
    assert n_params(model) == expected == 421_738


@pytest.mark.parametrize(
    ("image_size", "channels", "flat"),
    [(28, [32, 64], 64 * 7 * 7), (32, [32, 64], 64 * 8 * 8), (30, [16, 32, 48], 48 * 3 * 3)],
)
def test_small_cnn_flattened_size_follows_image_size(image_size, channels, flat):
    torch.manual_seed(0)
    model = SmallCNN(in_channels=3, num_classes=7, image_size=image_size, channels=channels)
    first_linear = next(m for m in model.classifier.modules() if isinstance(m, nn.Linear))
    assert first_linear.in_features == flat
    assert model(torch.randn(2, 3, image_size, image_size)).shape == (2, 7)


def test_small_cnn_structure_is_conv_relu_pool_per_stage():
    model = SmallCNN(batch_norm=False, hidden=0, convs_per_stage=1)
    kinds = [type(m) for m in model.features]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.MaxPool2d] * 2
    assert all(m.bias is not None for m in model.features if isinstance(m, nn.Conv2d))
    linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3136, 10)]


def test_small_cnn_default_has_batch_norm_and_two_convs_per_stage():
    model = SmallCNN()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    pairs = [(c.in_channels, c.out_channels) for c in convs]
    assert pairs == [(1, 32), (32, 32), (32, 64), (64, 64)]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == 4
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == 2


def test_small_cnn_wrong_input_shape_raises():
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)") as info:
        model(torch.randn(2, 3, 32, 32))
    assert "(2, 3, 32, 32)" in str(info.value)


def test_small_cnn_bad_configuration_raises():
    with pytest.raises(ValueError, match="too small"):
        SmallCNN(image_size=6, channels=[8, 8, 8])
    with pytest.raises(ValueError, match="at least one"):
        SmallCNN(channels=[])
    with pytest.raises(ValueError, match="convs_per_stage"):
        SmallCNN(convs_per_stage=0)


def test_small_cnn_eval_deterministic_train_uses_dropout():
    torch.manual_seed(0)
    model = SmallCNN(channels=[8, 16], hidden=32)
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_small_cnn_fits_a_small_batch():
    torch.manual_seed(0)
    model = SmallCNN(channels=[8, 16], hidden=32, dropout=0.0, hidden_dropout=0.0)
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (model.eval()(x).argmax(1) == y).all()


# --- LeNet5 -----------------------------------------------------------------------------------

# C1 6@5x5, C3 16@5x5 (fully connected to S2), C5 400->120, F6 120->84, output 84->10.
LENET5_PARAMS = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + 850


@pytest.mark.parametrize(("image_size", "padding"), [(28, 2), (32, 0)])
def test_lenet5_parameter_count(image_size, padding):
    model = LeNet5(image_size=image_size, padding=padding)
    assert n_params(model) == LENET5_PARAMS == 61_706


def test_lenet5_feature_map_sizes():
    torch.manual_seed(0)
    model = LeNet5().eval()
    x = torch.randn(2, 1, 28, 28)
    c1 = model.features[0](x)
    assert c1.shape == (2, 6, 28, 28)
    assert model.features(x).shape == (2, 16, 5, 5)
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize(
    ("activation", "pooling", "act_type", "pool_type"),
    [("tanh", "avg", nn.Tanh, nn.AvgPool2d), ("relu", "max", nn.ReLU, nn.MaxPool2d)],
)
def test_lenet5_activation_and_pooling(activation, pooling, act_type, pool_type):
    model = LeNet5(in_channels=3, num_classes=5, activation=activation, pooling=pooling)
    modules = list(model.modules())
    assert sum(isinstance(m, act_type) for m in modules) == 4
    assert sum(isinstance(m, pool_type) for m in modules) == 2
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 5)


def test_lenet5_bad_arguments_raise():
    with pytest.raises(ValueError, match="activation"):
        LeNet5(activation="gelu")
    with pytest.raises(ValueError, match="too small"):
        LeNet5(image_size=10, padding=0)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        LeNet5()(torch.randn(2, 1, 32, 32))
