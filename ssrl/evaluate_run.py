"""ssrl-eval: the offline linear probe and kNN classifier on a saved run or checkpoint.

    ssrl-eval outputs/runs/default                      # the run's checkpoints/last.ckpt
    ssrl-eval path/to/last.ckpt --knn-k 200 --knn-temperature 0.1
    ssrl-eval outputs/runs/imagenet --data-root /data/imagenet100   # the run's data, moved since

Prints the accuracies on the val and test splits as JSON (and beside them the run's summary.json
values, when there is one).
The protocol is the one of training's end: docs/method.md, "Diagnostics".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ssrl.data.module import SSLDataModule
from ssrl.errors import ConfigError
from ssrl.paradigms.base import MIParadigm
from ssrl.run.checkpoint import read_checkpoint
from ssrl.run.job import PARADIGMS, evaluate_offline, without_per_image
from ssrl.run.summary import read_summary


def load_checkpoint(path: Path, data_root: str | None = None) -> tuple[MIParadigm, SSLDataModule, Path]:
    """The trained model and its data module, rebuilt from the config stored in the checkpoint (with
    data.root set to ``data_root`` when given: data moved since, or a relative data.root read from
    another directory), and the run folder. Raises ConfigError when the data are not where it says."""
    checkpoint, checkpoint_path = read_checkpoint(path)
    cfg = OmegaConf.create(checkpoint["ssrl"]["config"])
    if data_root is not None:
        cfg.data.root = data_root
    data = SSLDataModule(cfg.data, cfg.seed)
    try:
        data.setup()  # the splits, read here: data not where data.root says fail here
    except ConfigError as exc:
        raise ConfigError(f"{exc} (the run's data: point ssrl-eval at where they lie now with --data-root)") from exc
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    model.load_state_dict(checkpoint["state_dict"])
    return model, data, checkpoint_path.parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssrl-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="a run folder or a .ckpt file")
    parser.add_argument("--knn-k", type=int, help="neighbours of the kNN classifier (default: the run's eval.knn_k)")
    parser.add_argument("--knn-temperature", type=float, help="kNN vote temperature (default: the run's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--data-root",
        help="the folder the run's data lie in now, in place of its data.root (data moved since, or a relative "
        "data.root given in another directory)",
    )
    args = parser.parse_args(argv)
    try:
        model, data, run_dir = load_checkpoint(args.path, args.data_root)
    except ConfigError as exc:
        print(f"ssrl-eval: error: {exc}", file=sys.stderr)
        sys.exit(2)
    cfg = model.cfg
    if args.knn_k is not None:
        cfg.eval.knn_k = args.knn_k
    if args.knn_temperature is not None:
        cfg.eval.knn_temperature = args.knn_temperature
    result = without_per_image(evaluate_offline(model, data, torch.device(args.device), cfg))
    result["knn"] = {"k": cfg.eval.knn_k, "temperature": cfg.eval.knn_temperature}
    summary = read_summary(run_dir)
    if summary and summary.get("status") == "completed":
        result["summary"] = {"val": summary["val"], "test": {k: summary[k] for k in ("probe_acc", "knn_acc")}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
