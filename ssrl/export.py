"""ssrl-export: a run's trained backbone (the online encoder's, which the probes evaluate) as a
safetensors file, with a JSON record beside it of what rebuilds it and what input it expects.

    ssrl-export outputs/runs/default                  # outputs/runs/default/backbone.safetensors (+ .json)
    ssrl-export outputs/runs/default --out r18.safetensors --projector

In plain PyTorch: ``ssrl.load_backbone("r18.safetensors")`` (a torch module, no pickle read), or, for
width 64 and the ImageNet stem, torchvision's own ResNet: docs/loggers_and_export.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ssrl.errors import ConfigError
from ssrl.nets.export import describe, save
from ssrl.paradigms.base import build_encoder
from ssrl.run.checkpoint import read_checkpoint

FILE = "backbone.safetensors"
ONLINE = "online."  # the online encoder's prefix in a checkpoint's state dict


def export(path: Path, out: Path | None = None, projector: bool = False) -> tuple[Path, Path]:
    """Write the backbone (and projector) of the run folder or checkpoint ``path`` to ``out`` (by default
    ``backbone.safetensors`` in the run folder, or beside a checkpoint file); return (``out``, its record)."""
    checkpoint, checkpoint_path = read_checkpoint(path)
    state = checkpoint["ssrl"]
    config = state["config"]
    encoder, _ = build_encoder(OmegaConf.create(config["backbone"]))
    online = {k[len(ONLINE) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(ONLINE)}
    encoder.load_state_dict(online)  # strict: every weight of the encoder, and nothing else
    out = Path(out) if out is not None else (Path(path) if Path(path).is_dir() else checkpoint_path.parent) / FILE
    record = {
        **describe(config, projector),
        "checkpoint": str(checkpoint_path.resolve()),
        "batches_trained": state.get("batches_trained"),
    }
    return out, save(out, encoder.backbone, record, encoder.projector if projector else None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssrl-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run folder or a .ckpt file")
    parser.add_argument("--out", type=Path, help=f"the safetensors file to write (default: <run>/{FILE})")
    parser.add_argument("--projector", action="store_true", help="also the projector, under projector.*")
    args = parser.parse_args(argv)
    try:
        out, record = export(args.run, args.out, args.projector)
    except ConfigError as exc:
        print(f"ssrl-export: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"ssrl-export: {out} and {record}; load it with ssrl.load_backbone({str(out)!r})")


if __name__ == "__main__":
    main()
