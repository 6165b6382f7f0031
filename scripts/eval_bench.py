"""The evaluation's cost, and the torch probe's agreement with scikit-learn's, on this machine.

(1) The per-epoch held-out diagnostics alone (effective rank of both branches' embeddings and of the
    backbone features, embedding std, uniformity: what MIParadigm.held_out_metrics computes) on
    random tensors of styled digits' val size (N = 288, D = 128, F = 256) and of ImageNet-100's
    (N = 12,700, D = 128, F = 512).
(2) A whole per-epoch evaluation (Trainer.validate: forward passes, MI on held-out pairs, the
    diagnostics) of the default config's model on styled digits' val split (288 images), and on a
    synthetic val split of 12.7k images (data=synthetic, 8x8 images, data.num_samples=17640,
    data.val_fraction=0.9).
(3) With --checkpoint RUN/checkpoints/last.ckpt: the final offline evaluation of that run (features,
    probe, kNN) timed, and the torch probe against scikit-learn's LogisticRegression (standardised, C = 1)
    on the same features: test accuracy of each and the share of test images they label differently.

Each time is the median of --repeats; run it at two commits to compare (the printed lines name what
they time). python scripts/eval_bench.py [--parts diagnostics,validate,probe] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssrl.evaluation import collapse  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def diagnostics(n: int, d: int, f: int, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)
    a, b, features = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g), torch.randn(n, f, generator=g)

    def once() -> None:
        min(collapse.effective_rank(a), collapse.effective_rank(b))
        min(collapse.embedding_std(a), collapse.embedding_std(b))
        collapse.effective_rank(features)
        collapse.uniformity(a)

    return timed(once, repeats)


def validation(overrides: list[str], repeats: int) -> tuple[float, int]:
    import pytorch_lightning as pl
    from hydra import compose, initialize_config_dir

    from ssrl.data.module import SSLDataModule
    from ssrl.run.job import PARADIGMS
    from ssrl.train import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["trainer.precision=32-true", *overrides])
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    trainer = pl.Trainer(
        accelerator="auto", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.validate(model, datamodule=data, verbose=False)  # warm-up
    return timed(lambda: trainer.validate(model, datamodule=data, verbose=False), repeats), len(data.splits.val)


def probe(checkpoint: Path) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ssrl.evaluate_run import load_checkpoint
    from ssrl.evaluation.probes import linear_probe_predictions
    from ssrl.run.job import evaluate_offline, offline_features

    model, data, _ = load_checkpoint(checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    evaluate_offline(model, data, device, model.cfg)
    print(f"final offline evaluation (features, probe, kNN) on {device}: {time.perf_counter() - started:.2f} s")
    features = offline_features(model, data, device)
    (x, y), (xt, yt) = features["labeled"], features["test"]
    started = time.perf_counter()
    ours = linear_probe_predictions((x, y), {"test": xt})["test"].cpu().numpy()
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x.cpu().numpy(), y.cpu().numpy())
    theirs = sk.predict(xt.cpu().numpy())
    sk_s = time.perf_counter() - started
    labels = yt.cpu().numpy()
    print(
        f"probe on {len(labels)} test images: torch {np.mean(ours == labels):.4f} ({ours_s:.2f} s), "
        f"scikit-learn {np.mean(theirs == labels):.4f} ({sk_s:.2f} s), "
        f"labeled differently {np.mean(ours != theirs):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="diagnostics,validate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "diagnostics" in parts:
        for name, shape in (("styled digits val", (288, 128, 256)), ("ImageNet-100 scale", (12_700, 128, 512))):
            seconds = diagnostics(*shape, args.repeats)
            print(f"per-epoch diagnostics, {name} (N, D, F = {shape}): {seconds:.3f} s")
    if "validate" in parts:
        for name, overrides in (
            ("styled digits", []),
            ("synthetic 12.7k", ["data=synthetic", "data.num_samples=17640", "data.val_fraction=0.9"]),
        ):
            seconds, n = validation(overrides, args.repeats)
            print(f"per-epoch evaluation (Trainer.validate), {name} val split ({n} images): {seconds:.2f} s")
    if args.checkpoint is not None:
        probe(args.checkpoint)


if __name__ == "__main__":
    main()
