"""Projector and predictor heads, and the encoder they make with a backbone."""

from __future__ import annotations

from torch import Tensor, nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, out_bn: bool = False) -> nn.Sequential:
    """``layers`` Linear layers, each hidden one followed by BatchNorm and ReLU: with layers=2,
    Linear -> BN -> ReLU -> Linear (the SimCLR / BYOL head, SimSiam's predictor). ``out_bn`` ends with a
    BatchNorm without affine parameters, the last Linear then without bias (SimSiam's projector)."""
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        blocks += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    blocks.append(nn.Linear(dim, out_dim, bias=not out_bn))
    if out_bn:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


class Encoder(nn.Module):
    """x -> (backbone features h, embedding z = projector(h))."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.backbone(x)
        return features, self.projector(features)
