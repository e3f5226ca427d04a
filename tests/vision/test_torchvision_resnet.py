"""TorchvisionResNet: new head, parameter groups, freezing, the CIFAR stem, and weights loading
(with torchvision's download replaced, so no test touches the network)."""

from __future__ import annotations

import os
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import ResNet18_Weights, WeightsEnum

from litlab.core.errors import LitlabError
from litlab.vision.models.torchvision_resnet import TorchvisionResNet


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def batch_norms(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def sgd_step(model: nn.Module, batch_size: int = 4) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(batch_size, 3, 32, 32), torch.arange(batch_size) % 10
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


@pytest.fixture
def fake_download(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Replace torchvision's download by a state dict of a fresh, seeded resnet18."""
    torch.manual_seed(123)
    reference = torchvision.models.resnet18().state_dict()
    calls = {"weights": [], "state": reference}

    def get_state_dict(self, *args, **kwargs):
        calls["weights"].append(self)
        return {k: v.clone() for k, v in reference.items()}

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)
    return calls


def test_head_replaced_and_output_shape():
    torch.manual_seed(0)
    model = TorchvisionResNet(num_classes=7)
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (512, 7)
    assert isinstance(model.backbone.fc, nn.Identity)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_resnet18_parameter_count_matches_torchvision():
    model = TorchvisionResNet("resnet18", num_classes=1000)
    assert n_params(model) == n_params(torchvision.models.resnet18()) == 11_689_512


@pytest.mark.parametrize(("arch", "features"), [("resnet34", 512), ("resnet50", 2048)])
def test_other_architectures(arch, features):
    model = TorchvisionResNet(arch, num_classes=3)
    assert (model.head.in_features, model.head.out_features) == (features, 3)


def test_parameter_groups_disjoint_and_complete():
    model = TorchvisionResNet()
    backbone = {id(p) for p in model.backbone_parameters()}
    head = {id(p) for p in model.head_parameters()}
    assert backbone.isdisjoint(head)
    assert backbone | head == {id(p) for p in model.parameters()}
    assert head == {id(model.head.weight), id(model.head.bias)}
    # The groups an optimizer would get cover every parameter exactly once.
    optimizer = torch.optim.SGD(
        [
            {"params": model.backbone_parameters(), "lr": 1e-3},
            {"params": model.head_parameters(), "lr": 1e-2},
        ]
    )
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_frozen_backbone_does_not_move():
    torch.manual_seed(0)
    model = TorchvisionResNet(freeze_backbone=True).train()
    assert model.backbone_frozen
    assert not any(p.requires_grad for p in model.backbone_parameters())
    assert all(p.requires_grad for p in model.head_parameters())
    assert model.training
    assert not any(bn.training for bn in batch_norms(model))

    backbone_before, head_before = clone_state(model.backbone), clone_state(model.head)
    sgd_step(model)
    # Weights and BatchNorm running statistics alike.
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[name]), name
    assert not torch.equal(model.head.weight, head_before["weight"])
    assert all(p.grad is None for p in model.backbone_parameters())


def test_frozen_batch_norm_stays_in_eval_across_mode_switches():
    model = TorchvisionResNet(freeze_backbone=True)
    model.eval()
    model.train()
    assert model.training
    assert model.head.training
    assert not any(bn.training for bn in batch_norms(model))
    assert model.backbone.layer1.training  # only the norms are held in eval


def test_unfreeze_trains_the_backbone_again():
    torch.manual_seed(0)
    model = TorchvisionResNet(freeze_backbone=True).train()
    model.unfreeze_backbone()
    assert not model.backbone_frozen
    assert all(p.requires_grad for p in model.parameters())
    assert all(bn.training for bn in batch_norms(model))

    before = clone_state(model.backbone)
    sgd_step(model)
    after = model.backbone.state_dict()
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert not torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])


def test_freeze_after_construction_and_unfreeze_in_eval():
    model = TorchvisionResNet().train()
    model.freeze_backbone()
    assert not any(bn.training for bn in batch_norms(model))
    model.eval()
    model.unfreeze_backbone()
    assert not any(bn.training for bn in batch_norms(model))  # follows the module's eval mode


def test_cifar_stem():
    torch.manual_seed(0)
    model = TorchvisionResNet(cifar_stem=True).eval()
    conv1 = model.backbone.conv1
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(model.backbone.maxpool, nn.Identity)
    x = torch.randn(2, 3, 32, 32)
    b = model.backbone
    features = b.layer4(b.layer3(b.layer2(b.layer1(b.relu(b.bn1(b.conv1(x)))))))
    assert features.shape == (2, 512, 4, 4)  # the ImageNet stem would leave 1x1
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("name", ["IMAGENET1K_V1", "DEFAULT", "ResNet18_Weights.IMAGENET1K_V1"])
def test_weights_loaded_into_backbone_and_head_is_new(fake_download, name):
    torch.manual_seed(0)
    model = TorchvisionResNet(weights=name, num_classes=10)
    assert fake_download["weights"] == [ResNet18_Weights.IMAGENET1K_V1]
    reference = fake_download["state"]
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in reference if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, reference[key]), key
    assert model.head.weight.shape == (10, 512)


def test_weights_with_cifar_stem_keep_all_but_the_stem(fake_download):
    torch.manual_seed(0)
    model = TorchvisionResNet(weights="IMAGENET1K_V1", cifar_stem=True)
    reference = fake_download["state"]
    assert model.backbone.conv1.weight.shape == (64, 3, 3, 3)
    assert torch.equal(model.backbone.layer1[0].conv1.weight, reference["layer1.0.conv1.weight"])
    assert torch.equal(model.backbone.bn1.running_var, reference["bn1.running_var"])


def test_unknown_weights_name_lists_valid_names():
    with pytest.raises(ValueError, match="IMAGENET1K_V2") as info:
        TorchvisionResNet(weights="IMAGENET1K_V2")  # resnet18 only has V1
    message = str(info.value)
    assert "resnet18" in message
    assert "IMAGENET1K_V1" in message
    assert "DEFAULT" in message


@pytest.mark.parametrize(
    "error",
    [urllib.error.URLError("[Errno -3] Temporary failure in name resolution"), OSError(101)],
)
def test_offline_download_failure_is_a_litlab_error(monkeypatch, error):
    def get_state_dict(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)
    with pytest.raises(LitlabError, match="could not download") as info:
        TorchvisionResNet(weights="DEFAULT")
    expected_path = os.path.join(torch.hub.get_dir(), "checkpoints", "resnet18-f37072fd.pth")
    assert expected_path in str(info.value)
    assert ResNet18_Weights.IMAGENET1K_V1.url in str(info.value)
