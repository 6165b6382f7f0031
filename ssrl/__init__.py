"""ssrl: self-supervised representation learning as mutual-information maximisation."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``ssrl.load_backbone`` (ssrl.nets.export), imported on first use so that ``import ssrl`` stays light."""
    if name == "load_backbone":
        from ssrl.nets.export import load_backbone

        return load_backbone
    raise AttributeError(f"module 'ssrl' has no attribute {name!r}")
