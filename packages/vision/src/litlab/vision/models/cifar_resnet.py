"""The CIFAR-10 ResNets of He et al., 2016 ("Deep Residual Learning for Image Recognition",
Sec. 4.2), with optional stochastic depth (Huang et al., 2016, "Deep Networks with Stochastic
Depth")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from litlab.core.number_types import ClosedUnitInterval, PositiveInt

STAGE_CHANNELS = (16, 32, 64)


class PadShortcut(nn.Module):
    """The paper's option-A shortcut: subsample by ``stride`` and zero-pad the new channels.

    It has no parameters, so a deeper net costs no more than its residual branches.
    """

    def __init__(
        self, in_channels: PositiveInt, out_channels: PositiveInt, stride: PositiveInt
    ) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class BasicBlock(nn.Module):
    """Conv3x3-BN-ReLU-Conv3x3-BN on the residual branch, added to the shortcut, then ReLU.

    ``drop_prob`` drops the whole residual branch per sample during training (stochastic depth);
    the kept branches are scaled by ``1 / (1 - drop_prob)`` so evaluation needs no rescaling.
    """

    def __init__(
        self,
        in_channels: PositiveInt,
        out_channels: PositiveInt,
        stride: PositiveInt = 1,
        drop_prob: ClosedUnitInterval = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Always present (a no-op at p=0) so state dicts match with and without stochastic depth.
        self.stochastic_depth = StochasticDepth(drop_prob, mode="row")
        self.shortcut = (
            PadShortcut(in_channels, out_channels, stride)
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.stochastic_depth(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


class CIFARResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images: a 3x3 conv with 16 filters, three stages of ``n`` basic
    blocks with 16, 32 and 64 filters (the 2nd and 3rd start with stride 2), global average
    pooling and a linear layer.

    ``depth`` 20, 32, 44, 56, 110 give the paper's ResNet-20 ... ResNet-110 (0.27M to 1.7M
    parameters). Shortcuts are option A (parameter-free), weights use Kaiming-normal init.
    """

    def __init__(
        self,
        depth: PositiveInt = 20,
        num_classes: PositiveInt = 10,
        in_channels: PositiveInt = 3,
        stochastic_depth: ClosedUnitInterval = 0.0,
    ) -> None:
        """Args:
        depth: Number of weighted layers, 6n+2 (20, 32, 44, 56, 110, ...).
        num_classes: Number of output logits.
        in_channels: Image channels.
        stochastic_depth: Drop probability of the last residual block; block ``l`` of ``L``
            drops with ``l / L`` of it (Huang et al.'s linear decay rule, 0.5 in the paper).
            0 disables stochastic depth. Only active in training mode.
        """
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth}"
            )
        if not 0.0 <= stochastic_depth <= 1.0:
            raise ValueError(f"stochastic_depth must be in [0, 1], got {stochastic_depth}")
        self.depth = depth
        self.in_channels = in_channels
        n = (depth - 2) // 6
        total_blocks = 3 * n

        self.conv1 = nn.Conv2d(in_channels, STAGE_CHANNELS[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        stages: list[nn.Module] = []
        c_in, block_index = STAGE_CHANNELS[0], 0
        for stage, c_out in enumerate(STAGE_CHANNELS):
            blocks = []
            for i in range(n):
                block_index += 1
                stride = 2 if stage > 0 and i == 0 else 1
                drop_prob = stochastic_depth * block_index / total_blocks
                blocks.append(BasicBlock(c_in, c_out, stride, drop_prob))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(c_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
