"""CIFARResNet: the paper's sizes, option-A shortcuts, depth, init, and stochastic depth."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

from litlab.vision.models.cifar_resnet import BasicBlock, CIFARResNet, PadShortcut


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expected_params(n: int, num_classes: int = 10) -> int:
    """By hand: 3x3 convs without bias, two BatchNorm parameters per channel."""
    stem = 3 * 16 * 9 + 2 * 16

    def block(c_in: int, c_out: int) -> int:
        return c_in * c_out * 9 + c_out * c_out * 9 + 2 * 2 * c_out

    stages = n * block(16, 16)
    stages += block(16, 32) + (n - 1) * block(32, 32)
    stages += block(32, 64) + (n - 1) * block(64, 64)
    return stem + stages + 64 * num_classes + num_classes


# Table 6 of He et al. (2016): parameters in millions, as printed.
PAPER = {
    20: (269_722, "0.27"),
    32: (464_154, "0.46"),
    44: (658_586, "0.66"),
    56: (853_018, "0.85"),
    110: (1_727_962, "1.7"),
}


@pytest.mark.parametrize("depth", sorted(PAPER))
def test_parameter_count_matches_paper(depth):
    exact, paper = PAPER[depth]
    count = n_params(CIFARResNet(depth))
    assert count == exact == expected_params((depth - 2) // 6)
    decimals = len(paper.split(".")[1])
    assert f"{count / 1e6:.{decimals}f}" == paper
    assert math.isclose(count, float(paper) * 1e6, rel_tol=0.02)


@pytest.mark.parametrize("depth", [20, 56])
def test_output_shape(depth):
    torch.manual_seed(0)
    assert CIFARResNet(depth)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_other_classes_and_channels():
    torch.manual_seed(0)
    model = CIFARResNet(depth=8, num_classes=100, in_channels=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 100)


@pytest.mark.parametrize("depth", [20, 32, 110])
def test_weighted_layers_equal_depth(depth):
    model = CIFARResNet(depth)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == depth


def test_shortcuts_are_parameter_free_option_a():
    model = CIFARResNet(20)
    pads = [m for m in model.modules() if isinstance(m, PadShortcut)]
    assert len(pads) == 2  # the first block of stages 2 and 3
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert all(n_params(b.shortcut) == 0 for b in blocks)
    assert sum(isinstance(b.shortcut, nn.Identity) for b in blocks) == 7

    x = torch.randn(2, 16, 8, 8)
    out = PadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert not out[:, 16:].any()


def test_stage_resolutions():
    torch.manual_seed(0)
    model = CIFARResNet(20).eval()
    x = torch.relu(model.bn1(model.conv1(torch.randn(1, 3, 32, 32))))
    sizes = []
    for stage in (model.layer1, model.layer2, model.layer3):
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_kaiming_init():
    torch.manual_seed(0)
    model = CIFARResNet(20)
    conv = model.layer3[1].conv2
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((bn.weight == 1).all() and (bn.bias == 0).all() for bn in bns)


@pytest.mark.parametrize("depth", [2, 18, 21, 0])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        CIFARResNet(depth)


def test_bad_stochastic_depth_raises():
    with pytest.raises(ValueError, match="stochastic_depth"):
        CIFARResNet(stochastic_depth=1.5)


def test_stochastic_depth_probabilities_rise_linearly():
    model = CIFARResNet(32, stochastic_depth=0.5)
    probs = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    total = 15
    assert len(probs) == total
    assert probs == pytest.approx([0.5 * i / total for i in range(1, total + 1)])
    assert probs[-1] == pytest.approx(0.5)
    assert all(m.mode == "row" for m in model.modules() if isinstance(m, StochasticDepth))


def test_stochastic_depth_eval_matches_plain_model():
    torch.manual_seed(0)
    plain = CIFARResNet(20)
    dropped = CIFARResNet(20, stochastic_depth=0.5)
    dropped.load_state_dict(plain.state_dict())
    plain.eval()
    dropped.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        out = dropped(x)
        torch.testing.assert_close(out, dropped(x))
        torch.testing.assert_close(out, plain(x))


def test_stochastic_depth_varies_in_training_only_when_enabled():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        plain = CIFARResNet(8).train()
        torch.testing.assert_close(plain(x), plain(x))
        dropped = CIFARResNet(8, stochastic_depth=0.5).train()
        assert not torch.allclose(dropped(x), dropped(x))


def test_dropped_block_is_its_shortcut():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 8, 8)  # non-negative, like the output of a previous block
    block = BasicBlock(16, 16, drop_prob=1.0).train()
    torch.testing.assert_close(block(x), x)
    down = BasicBlock(16, 32, stride=2, drop_prob=1.0).train()
    torch.testing.assert_close(down(x), down.shortcut(x))
