"""ResNet backbones from torchvision, with the CIFAR stem option, returning pooled features."""

from __future__ import annotations

import torchvision
from torch import nn

BACKBONES = {"resnet18": torchvision.models.resnet18, "resnet50": torchvision.models.resnet50}


def build_backbone(name: str, in_channels: int, cifar_stem: bool) -> tuple[nn.Module, int]:
    """A randomly initialised ResNet without its classifier, and its feature dimension.

    cifar_stem: the first convolution becomes 3x3 with stride 1 and the max-pool is removed, as is
    usual for 32x32 (and smaller) images; otherwise the ImageNet stem (7x7, stride 2, max-pool).
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
    net = BACKBONES[name](weights=None)
    if cifar_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, feature_dim
