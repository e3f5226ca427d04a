"""MixUp and CutMix: batch transforms that blend pairs of training images and their labels.

The labels come out as ``(B, num_classes)`` float probabilities, so the task's loss must take
soft targets (cross-entropy with probabilities) and its accuracy the argmax.
"""

from __future__ import annotations

from torchvision.transforms import v2


def batch_mixing(mixup_alpha: float, cutmix_alpha: float, num_classes: int) -> v2.Transform | None:
    """MixUp and/or CutMix for ``(images, labels)`` batches; ``None`` when both alphas are 0.

    With both on, each batch gets one of the two at random, as torchvision's reference training
    scripts do.
    """
    mixes: list[v2.Transform] = []
    if mixup_alpha > 0:
        mixes.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if cutmix_alpha > 0:
        mixes.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
