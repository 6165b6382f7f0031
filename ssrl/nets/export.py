"""A trained backbone for plain PyTorch code: its weights as a safetensors file (no pickle), and beside it a
JSON record of what rebuilds it and what it expects as input.

The safetensors file holds the backbone's state dict under torchvision's ResNet names (``conv1.weight``,
``layer1.0.bn1.running_mean``, ...) and no ``fc``: the backbone ends at the pooled features. With width 64
and the ImageNet stem it loads into ``torchvision.models.resnet18()`` / ``resnet50()`` with strict=True once
their classifier is ``fc = nn.Identity()``. An exported projector sits in the same file under
``projector.`` (drop those keys to load the backbone into torchvision).

The record (``<file>.json``): ``architecture``, ``width``, ``stem`` ("cifar": 3x3 stride-1 convolution, no
max-pool; "imagenet": torchvision's 7x7 stride-2 and max-pool), ``in_channels``, ``feature_dim``,
``input_size`` and ``mean`` / ``std``: the backbone was trained and evaluated on float images in [0, 1]
resized to input_size x input_size and normalised as (x - mean) / std per channel; ``projector`` (its
sizes, or null), ``torchvision`` (the constructor the file loads into, or null), and where it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ssrl.nets.backbones import STANDARD_WIDTH, build_backbone, feature_dim
from ssrl.nets.heads import mlp

FORMAT = "ssrl-backbone/1"
PROJECTOR = "projector."


def record_path(path: Path | str) -> Path:
    """The JSON record beside a safetensors file: ``backbone.safetensors`` -> ``backbone.json``."""
    return Path(path).with_suffix(".json")


def describe(config: dict[str, Any], projector: bool) -> dict[str, Any]:
    """The record of the backbone (and projector) of a run, from its resolved config."""
    backbone, data = config["backbone"], config["data"]
    stem = "cifar" if backbone["cifar_stem"] else "imagenet"
    channels = data["channels"]
    plain = backbone["width"] == STANDARD_WIDTH and stem == "imagenet" and backbone["in_channels"] == 3
    return {
        "format": FORMAT,
        "architecture": backbone["name"],
        "width": backbone["width"],
        "stem": stem,
        "in_channels": backbone["in_channels"],
        "feature_dim": feature_dim(backbone["name"], backbone["width"]),
        "input_size": data["image_size"],
        "mean": list(data["views"]["mean"])[:channels],
        "std": list(data["views"]["std"])[:channels],
        "projector": {
            "hidden_dim": backbone["projector_hidden_dim"],
            "out_dim": backbone["projector_dim"],
            "layers": backbone["projector_layers"],
            "out_bn": backbone["projector_out_bn"],
        }
        if projector
        else None,
        "torchvision": f"torchvision.models.{backbone['name']}" if plain else None,
    }


def save(path: Path | str, backbone: nn.Module, record: dict[str, Any], projector: nn.Module | None = None) -> Path:
    """Write ``backbone``'s (and ``projector``'s, under ``projector.``) weights to ``path`` (safetensors)
    and ``record`` beside it; return the record's path."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in backbone.state_dict().items()}
    if projector is not None:
        tensors |= {PROJECTOR + k: v.detach().contiguous() for k, v in projector.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": FORMAT})
    record_path(path).write_text(json.dumps(record, indent=1) + "\n")
    return record_path(path)


def load_backbone(path: Path | str, projector: bool = False) -> nn.Module:
    """The backbone exported to ``path`` by ssrl-export, as a plain torch module in eval mode: (N, C, H, W)
    images prepared as its record says -> (N, feature_dim) features. ``projector=True``: the backbone
    followed by the projector, -> (N, projector out_dim) embeddings (the file must hold it).
    Reads no pickle: weights from safetensors, the architecture from the JSON record beside them."""
    from safetensors.torch import load_file

    record = json.loads(record_path(path).read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{record_path(path)}: not an ssrl backbone record (format {record.get('format')!r})")
    tensors = load_file(str(path))
    net, _ = build_backbone(record["architecture"], record["in_channels"], record["stem"] == "cifar", record["width"])
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(PROJECTOR)})
    if projector:
        sizes = record["projector"]
        if sizes is None:
            raise ValueError(f"{path}: exported without its projector (ssrl-export --projector writes it)")
        head = mlp(record["feature_dim"], sizes["hidden_dim"], sizes["out_dim"], sizes["layers"], sizes["out_bn"])
        head.load_state_dict({k[len(PROJECTOR) :]: v for k, v in tensors.items() if k.startswith(PROJECTOR)})
        net = nn.Sequential(net, head)
    return net.eval()
