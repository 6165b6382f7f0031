"""ResNet backbones from torchvision, with the CIFAR stem option and a width, returning pooled features."""

from __future__ import annotations

import torchvision
from torch import nn

#: torchvision's block and stage depths of each ResNet.
BACKBONES = {
    "resnet18": (torchvision.models.resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet50": (torchvision.models.resnet.Bottleneck, [3, 4, 6, 3]),
}
#: Channels of the first stage in torchvision's ResNets; the stages double it.
STANDARD_WIDTH = 64


class ScaledResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage ``width / 64`` times as wide (width 64: torchvision's own)."""

    def __init__(self, block: type[nn.Module], layers: list[int], width: int) -> None:
        self.width = width
        super().__init__(block, layers)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int = 1, dilate: bool = False):
        if planes == STANDARD_WIDTH:  # the first stage follows the stem, which has ``width`` channels
            self.inplanes = self.width
        return super()._make_layer(block, planes * self.width // STANDARD_WIDTH, blocks, stride, dilate)


def feature_dim(name: str, width: int = STANDARD_WIDTH) -> int:
    """Channels of the pooled features: 8 * width for ResNet-18, 32 * width for ResNet-50 (Bottleneck's
    expansion of 4)."""
    return 8 * width * BACKBONES[name][0].expansion


def build_backbone(name: str, in_channels: int, cifar_stem: bool, width: int = STANDARD_WIDTH) -> tuple[nn.Module, int]:
    """A randomly initialised ResNet without its classifier, and its feature dimension (8 * width for
    ResNet-18, 32 * width for ResNet-50).

    cifar_stem: the first convolution becomes 3x3 with stride 1 and the max-pool is removed, as is
    usual for 32x32 (and smaller) images; otherwise the ImageNet stem (7x7, stride 2, max-pool).
    width: channels of the first stage (64 is torchvision's ResNet; 32 halves every stage).
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
    net = ScaledResNet(*BACKBONES[name], width=width)
    if cifar_stem:
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's stem
    net.fc = nn.Identity()
    return net, feature_dim(name, width)
