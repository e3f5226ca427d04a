"""The DDPM U-Net (Ho et al. 2020) from litlab.core.layers blocks, optionally class-conditional."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from litlab.core.errors import LitlabError
from litlab.core.layers import ConvResidualBlock, MultiHeadAttention, TimestepEmbedding
from litlab.core.number_types import PositiveInt, RightOpenUnitInterval


class SpatialSelfAttention(nn.Module):
    """Residual self-attention over the pixels of a feature map: GroupNorm, then
    multi-head attention with every pixel a token, added back to the input.

    Args:
        channels: Channels of the feature map (the attention width).
        num_heads: Attention heads; must divide ``channels``.
        groups: GroupNorm groups; must divide ``channels``.
    """

    def __init__(
        self, channels: PositiveInt, num_heads: PositiveInt = 4, groups: PositiveInt = 8
    ) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attention = MultiHeadAttention(channels, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        out = self.attention(tokens).transpose(1, 2).reshape(b, c, h, w)
        return x + out


class _Level(nn.Module):
    """The residual blocks (each optionally followed by attention) of one resolution."""

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        time_dim: int,
        attention: bool,
        num_heads: int,
        groups: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvResidualBlock(c, out_channels, time_dim=time_dim, groups=groups, dropout=dropout)
            for c in in_channels
        )
        self.attentions = nn.ModuleList(
            SpatialSelfAttention(out_channels, num_heads, groups) if attention else nn.Identity()
            for _ in in_channels
        )


class UNet(nn.Module):
    """Noise-prediction U-Net: ``(x_t, t, labels) -> output`` of the same shape as ``x_t``.

    Ho et al.'s layout: a 3x3 input convolution; per resolution ``num_res_blocks`` residual
    blocks (GroupNorm-SiLU-conv with the timestep embedding added, core ``ConvResidualBlock``),
    self-attention after each block at the resolutions in ``attention_resolutions``, and a
    stride-2 convolution down; a middle of block-attention-block; the mirror image going up
    with the skip connections concatenated (one block more per resolution) and
    nearest-neighbour upsampling followed by a 3x3 convolution; GroupNorm-SiLU-conv out. The
    output convolution starts at zero, so an untrained model predicts zero noise.

    With ``num_classes`` set, a learned embedding of the class label is added to the timestep
    embedding. The extra index ``num_classes`` (``null_class``) is the "no label" class that
    classifier-free guidance trains with and samples from; ``labels=None`` means it for all.

    Args:
        in_channels: Image channels (1 for MNIST, 3 for CIFAR-10).
        image_size: Height and width of the images (square); must halve evenly at each level.
        base_channels: Channels of the first level.
        channel_mults: Channels of each level as multiples of ``base_channels``; one level per
            entry, each but the last followed by a halving of the resolution.
        num_res_blocks: Residual blocks per level on the way down.
        attention_resolutions: Feature-map sizes (e.g. 16 for CIFAR-10's 16x16 level) that get
            self-attention.
        num_heads: Attention heads.
        dropout: Dropout inside the residual blocks.
        groups: GroupNorm groups; must divide every level's channels.
        num_classes: Number of classes for class conditioning, or None (unconditional).
    """

    def __init__(
        self,
        in_channels: PositiveInt = 1,
        image_size: PositiveInt = 28,
        base_channels: PositiveInt = 64,
        channel_mults: Sequence[PositiveInt] = (1, 2, 2),
        num_res_blocks: PositiveInt = 2,
        attention_resolutions: Sequence[PositiveInt] = (),
        num_heads: PositiveInt = 4,
        dropout: RightOpenUnitInterval = 0.0,
        groups: PositiveInt = 8,
        num_classes: PositiveInt | None = None,
    ) -> None:
        super().__init__()
        self._check(
            image_size, base_channels, channel_mults, attention_resolutions, num_heads, groups
        )
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        time_dim = 4 * base_channels
        self.time_embedding = TimestepEmbedding(base_channels, hidden_dim=time_dim)
        self.class_embedding = (
            nn.Embedding(num_classes + 1, time_dim) if num_classes is not None else None
        )
        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        def level(ins: Sequence[int], out: int, size: int) -> _Level:
            attention = size in attention_resolutions
            return _Level(ins, out, time_dim, attention, num_heads, groups, dropout)

        # Down: remember the channels of every skip the up path will concatenate.
        skips, channels, size = [base_channels], base_channels, image_size
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for index, mult in enumerate(channel_mults):
            out = base_channels * mult
            self.down.append(level([channels] + [out] * (num_res_blocks - 1), out, size))
            channels = out
            skips += [out] * num_res_blocks
            if index < len(channel_mults) - 1:
                self.downsample.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))
                skips.append(channels)
                size //= 2

        self.middle_in = ConvResidualBlock(channels, channels, time_dim=time_dim, groups=groups)
        self.middle_attention = SpatialSelfAttention(channels, num_heads, groups)
        self.middle_out = ConvResidualBlock(channels, channels, time_dim=time_dim, groups=groups)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for index, mult in reversed(list(enumerate(channel_mults))):
            out = base_channels * mult
            ins = []
            for _ in range(num_res_blocks + 1):
                ins.append(channels + skips.pop())
                channels = out
            self.up.append(level(ins, out, size))
            if index > 0:
                self.upsample.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"),
                        nn.Conv2d(channels, channels, 3, padding=1),
                    )
                )
                size *= 2

        self.output = nn.Sequential(
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, in_channels, 3, padding=1),
        )
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    @staticmethod
    def _check(
        image_size: int,
        base_channels: int,
        channel_mults: Sequence[int],
        attention_resolutions: Sequence[int],
        num_heads: int,
        groups: int,
    ) -> None:
        if not channel_mults:
            raise LitlabError("channel_mults needs at least one level, e.g. [1, 2, 2]")
        halvings = len(channel_mults) - 1
        if image_size % 2**halvings:
            raise LitlabError(
                f"image_size={image_size} cannot be halved {halvings} times evenly (the skip "
                f"connections need matching sizes); use fewer channel_mults levels"
            )
        sizes = [image_size // 2**i for i in range(len(channel_mults))]
        if unknown := [r for r in attention_resolutions if r not in sizes]:
            raise LitlabError(
                f"attention_resolutions {unknown} are not feature-map sizes of this U-Net; "
                f"its levels are {sizes}"
            )
        channels = [base_channels] + [base_channels * m for m in channel_mults]
        if bad := [c for c in channels if c % groups]:
            raise LitlabError(f"groups={groups} does not divide the channel counts {bad}")
        # The middle always attends; other levels where their size is listed.
        attending = [channels[-1]] + [
            c for c, size in zip(channels[1:], sizes, strict=True) if size in attention_resolutions
        ]
        if bad := [c for c in attending if c % num_heads]:
            raise LitlabError(f"num_heads={num_heads} does not divide the attention widths {bad}")

    @property
    def null_class(self) -> int | None:
        """The label index meaning "no class" (classifier-free guidance), or None."""
        return self.num_classes

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args:
        x: (B, C, H, W) noisy images.
        t: (B,) integer timesteps.
        labels: (B,) class indices in ``[0, num_classes]`` (``num_classes`` is "no class") for
            a conditional model; None means "no class" for every image.
        """
        emb = self.time_embedding(t)
        if self.class_embedding is not None:
            if labels is None:
                labels = torch.full_like(t, self.num_classes, dtype=torch.long)
            emb = emb + self.class_embedding(labels)
        elif labels is not None:
            raise ValueError("labels given to an unconditional UNet; build it with num_classes")

        h = self.input_conv(x)
        skips = [h]
        for index, level in enumerate(self.down):
            for block, attention in zip(level.blocks, level.attentions, strict=True):
                h = attention(block(h, emb))
                skips.append(h)
            if index < len(self.downsample):
                h = self.downsample[index](h)
                skips.append(h)

        h = self.middle_out(self.middle_attention(self.middle_in(h, emb)), emb)

        for index, level in enumerate(self.up):
            for block, attention in zip(level.blocks, level.attentions, strict=True):
                h = attention(block(torch.cat([h, skips.pop()], dim=1), emb))
            if index < len(self.upsample):
                h = self.upsample[index](h)
        return self.output(h)
