"""Transfer learning through the task: backbone LR through parameter groups, frozen backbone
untouched by training, and unfrozen from the configured epoch on."""

import pytest
import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, TensorDataset

from litlab.core.errors import LitlabError
from litlab.vision.models.mlp import MLPClassifier
from litlab.vision.models.torchvision_resnet import TorchvisionResNet
from litlab.vision.tasks.classification import ImageClassifier


def resnet(**kwargs) -> TorchvisionResNet:
    torch.manual_seed(0)
    return TorchvisionResNet("resnet18", num_classes=3, cifar_stem=True, **kwargs)


def test_backbone_groups_get_the_scaled_lr():
    model = resnet()
    task = ImageClassifier(model, num_classes=3, lr=0.01, weight_decay=1e-4, backbone_lr_scale=0.1)
    optimizer = task.configure_optimizers()
    backbone = {id(p) for p in model.backbone_parameters()}
    head = {id(p) for p in model.head_parameters()}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        expected = 0.001 if ids <= backbone else 0.01
        assert ids <= backbone or ids <= head
        assert group["lr"] == pytest.approx(expected)
        # Decay on weight matrices only, in both parts.
        assert group["weight_decay"] == (1e-4 if all(p.ndim > 1 for p in group["params"]) else 0)
    grouped = sorted(id(p) for g in optimizer.param_groups for p in g["params"])
    assert grouped == sorted(backbone | head)


def test_frozen_backbone_stays_put_until_its_unfreeze_epoch():
    model = resnet(freeze_backbone=True)
    task = ImageClassifier(
        model, num_classes=3, lr=0.05, unfreeze_backbone_at_epoch=1, report_worst=0
    )
    data = TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 3, (16,)))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.clone()

    def trainer(epochs: int) -> Trainer:
        return Trainer(
            max_epochs=epochs, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip

    trainer(1).fit(task, DataLoader(data, batch_size=8))
    after_one = model.backbone.state_dict()
    # Weights and BatchNorm running statistics alike.
    assert all(torch.equal(before[k], after_one[k]) for k in before)
    assert not torch.equal(head_before, model.head.weight)

    trainer(2).fit(task, DataLoader(data, batch_size=8))
    assert not model.backbone_frozen
    changed = [k for k, v in model.backbone.state_dict().items() if not torch.equal(before[k], v)]
    assert changed


def test_backbone_options_need_a_model_with_a_backbone():
    with pytest.raises(LitlabError, match="has no backbone_parameters"):
        ImageClassifier(MLPClassifier(), num_classes=10, backbone_lr_scale=0.1)
    with pytest.raises(LitlabError, match="has no unfreeze_backbone"):
        ImageClassifier(MLPClassifier(), num_classes=10, unfreeze_backbone_at_epoch=2)
