"""torchvision's ImageNet ResNets (He et al., 2016) with a new head, for fine-tuning."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from litlab.core.errors import LitlabError
from litlab.core.number_types import PositiveInt


def resolve_weights(arch: str, weights: str) -> WeightsEnum:
    """The torchvision weights of ``arch`` called ``weights`` ("IMAGENET1K_V1", "DEFAULT" or the
    full "ResNet18_Weights.IMAGENET1K_V1"); a ValueError lists the valid names otherwise."""
    weights_enum = torchvision.models.get_model_weights(arch)
    name = weights.removeprefix(f"{weights_enum.__name__}.")
    if name == "DEFAULT":
        return weights_enum.DEFAULT
    if name in weights_enum.__members__:
        return weights_enum[name]
    valid = ", ".join(["DEFAULT", *weights_enum.__members__])
    raise ValueError(f"unknown weights {weights!r} for {arch}; valid names: {valid}")


def load_weights(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """Download ``weights`` into torch's hub cache (or read them from there)."""
    try:
        return weights.get_state_dict(progress=False)
    except OSError as error:  # URLError, HTTPError and socket errors are all OSErrors
        path = os.path.join(
            torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(weights.url).path)
        )
        raise LitlabError(
            f"could not download the {weights!r} weights from {weights.url} ({error}). "
            f"Without internet, place that file at {path} (torch's cache, set by $TORCH_HOME) "
            "and run again, or use weights: null to train from scratch."
        ) from error


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet whose final fully connected layer is a new ``Linear(num_classes)``.

    ``backbone`` is the ResNet without its classifier (outputs pooled features), ``head`` the new
    linear layer; ``backbone_parameters()`` and ``head_parameters()`` split the parameters for
    optimizer groups (e.g. a lower learning rate on a pretrained backbone). A frozen backbone
    gets no gradients and its BatchNorm layers stay in eval mode, so their running statistics
    keep the pretrained values even while the module trains.
    """

    def __init__(
        self,
        arch: Literal["resnet18", "resnet34", "resnet50"] = "resnet18",
        num_classes: PositiveInt = 10,
        weights: str | None = None,
        freeze_backbone: bool = False,
        cifar_stem: bool = False,
    ) -> None:
        """Args:
        arch: Which torchvision ResNet.
        num_classes: Number of output logits (the new head).
        weights: Pretrained torchvision weights, e.g. ``"IMAGENET1K_V1"`` or ``"DEFAULT"``
            (the best available); ``None`` for random initialisation. Downloaded once into
            torch's hub cache (``torch.hub.get_dir()``).
        freeze_backbone: Train only the head (linear probing); see ``unfreeze_backbone()``.
        cifar_stem: Replace the 7x7 stride-2 stem conv and its max pool by a 3x3 stride-1
            conv without pooling, the common practice for 32x32 images (CIFAR), which would
            otherwise be downsampled to 8x8 before the first stage. The new stem conv is
            randomly initialised even when ``weights`` are loaded.
        """
        super().__init__()
        self.arch = arch
        resolved = resolve_weights(arch, weights) if weights is not None else None
        if resolved is None:
            backbone = torchvision.models.get_model(arch)
        else:
            backbone = torchvision.models.get_model(
                arch, num_classes=len(resolved.meta["categories"])
            )
            backbone.load_state_dict(load_weights(resolved))
        if cifar_stem:
            backbone.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
            backbone.maxpool = nn.Identity()
        in_features = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Linear(in_features, num_classes)
        self._backbone_frozen = False
        if freeze_backbone:
            self.freeze_backbone()

    @property
    def backbone_frozen(self) -> bool:
        return self._backbone_frozen

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter except the head's."""
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """The new classifier's parameters."""
        return self.head.parameters()

    def freeze_backbone(self) -> None:
        """Stop gradients to the backbone and keep its BatchNorm statistics fixed."""
        self._backbone_frozen = True
        self.backbone.requires_grad_(False)
        self._set_backbone_norm_mode()

    def unfreeze_backbone(self) -> None:
        """Train the backbone again; its BatchNorm layers follow the module's mode."""
        self._backbone_frozen = False
        self.backbone.requires_grad_(True)
        self._set_backbone_norm_mode()

    def train(self, mode: bool = True) -> TorchvisionResNet:
        super().train(mode)
        self._set_backbone_norm_mode()
        return self

    def _set_backbone_norm_mode(self) -> None:
        # In train mode BatchNorm updates its running statistics even without gradients, which
        # would slowly overwrite the pretrained ones of a frozen backbone.
        for module in self.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train(self.training and not self._backbone_frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
