"""Can a benchmark tell learning from not learning? The floors of styled digits, measured.

On the test split of ``data=styled_digits`` (or another data set given by --data):
  - a linear probe on the raw pixels (the same probe as every run's: standardised, logistic regression);
  - the untrained encoder's probe, over --seeds seeds (the encoder drawn from each seed);
  - the default recipe (JMI + cos-DV, ResNet-18 at --width; styled digits: 30 epochs, batch 128), one ``ssrl-train``
    run per seed: probe, untrained probe, the paired gain with its 95% t-interval, wall and CPU time.
Then each floor of the benchmark, PASS or FAIL:
  raw-pixel probe <= 0.30; untrained probe <= 0.50; trained - untrained >= 0.20 with the 95% intervals
  over seeds apart; one run <= 90 s.
Writes the table as markdown and JSON to --out; exits 1 if a floor fails.

    python scripts/benchmark_power.py                          # 3 seeds, about 4 min on 2 quiet cores
    python scripts/benchmark_power.py --seeds 5 --out /tmp/floors data.renders=2   # another design
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ssrl.analysis.intervals import t_interval
from ssrl.data.datasets import load_splits
from ssrl.data.module import SSLDataModule
from ssrl.evaluation.probes import linear_probe_accuracy
from ssrl.run.job import PARADIGMS, evaluate_offline
from ssrl.run.summary import read_summary
from ssrl.train import CONFIG_DIR

FLOORS = {"raw_probe": 0.30, "untrained_probe": 0.50, "gain": 0.20, "wall_s": 90.0}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def raw_pixel_probe(cfg) -> float:
    """The probe on the flattened uint8 pixels, fit on the labeled split, scored on test."""
    splits = load_splits(cfg.data)

    def flat(part):
        return part.images.flatten(1).float() / 255, part.labels

    return linear_probe_accuracy(flat(splits.labeled), {"test": flat(splits.test)})["test"]


def untrained_probe(overrides: list[str], seed: int) -> float:
    """The test probe of an encoder drawn from ``seed`` and never trained (each run's probe_acc_init)."""
    cfg = compose([*overrides, f"seed={seed}", "trainer=cpu"])
    torch.manual_seed(seed)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    return evaluate_offline(model, data, torch.device("cpu"), cfg)["test"]["probe_acc"]


def train_run(overrides: list[str], seed: int, folder: Path) -> dict:
    """One ``ssrl-train`` run as a user types it; its summary plus wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    args = [*overrides, f"seed={seed}", "trainer=cpu", "trainer.enable_progress_bar=false", f"hydra.run.dir={folder}"]
    subprocess.run([sys.executable, "-m", "ssrl.train", *args], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**read_summary(folder), "wall_measured_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="styled_digits")
    parser.add_argument("--width", type=int, default=32, help="backbone.width (64 = torchvision's ResNet-18)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark_power"))
    parser.add_argument("overrides", nargs="*", help="more ssrl-train overrides, e.g. data.renders=2")
    args = parser.parse_args()
    overrides = [f"data={args.data}", f"backbone.width={args.width}", *args.overrides]

    raw = raw_pixel_probe(compose(overrides))
    seeds = list(range(args.seeds))
    untrained = [untrained_probe(overrides, s) for s in seeds]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [train_run(overrides, s, Path(tmp) / f"seed{s}") for s in seeds]
    trained = [r["probe_acc"] for r in runs]
    init = [r["probe_acc_init"] for r in runs]
    gain = t_interval([a - b for a, b in zip(trained, init, strict=True)])
    trained_ci, init_ci = t_interval(trained), t_interval(init)
    walls = [r["wall_measured_s"] for r in runs]
    epochs = runs[0]["epochs"]
    floors = {
        "raw-pixel probe <= 0.30": raw <= FLOORS["raw_probe"],
        "untrained probe <= 0.50 (every seed)": max(untrained) <= FLOORS["untrained_probe"],
        "gain >= 0.20, 95% intervals apart": gain.mean >= FLOORS["gain"] and trained_ci.low > init_ci.high,
        "one run <= 90 s (slowest seed)": max(walls) <= FLOORS["wall_s"],
    }
    result = {
        "command": f"ssrl-train {' '.join(overrides)} seed=<seed> trainer=cpu",
        "epochs": epochs,
        "raw_pixel_probe": raw,
        "untrained_probe": untrained,
        "runs": [
            {k: r[k] for k in ("probe_acc", "probe_acc_init", "knn_acc", "collapsed", "wall_measured_s", "cpu_s")}
            | {"mi_start": r["mi_init"]["dv"], "mi_end": r["mi"]["dv"], "seed": s}
            for s, r in zip(seeds, runs, strict=True)
        ],
        "trained_probe": str(trained_ci),
        "untrained_probe_in_runs": str(init_ci),
        "gain": str(gain),
        "floors": floors,
    }
    lines = [
        f"# Benchmark floors: data={args.data}, ResNet-18 at width {args.width}",
        "",
        "Command: `python scripts/benchmark_power.py "
        + " ".join([f"--data {args.data} --width {args.width} --seeds {args.seeds}", *args.overrides])
        + "`; test split; "
        "mean [95% t-interval] over "
        f"{args.seeds} seeds. Machine: {torch.get_num_threads()} torch threads on the CPU.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| raw-pixel linear probe | {raw:.3f} |",
        f"| untrained encoder probe, per seed | {', '.join(f'{u:.3f}' for u in untrained)} |",
        f"| trained probe (JMI + cos-DV, {epochs} epochs), per seed | {', '.join(f'{p:.3f}' for p in trained)} |",
        f"| trained probe, mean [95% interval] | {trained_ci} |",
        f"| untrained probe of the same runs | {init_ci} |",
        f"| paired gain | {gain} |",
        "| MI (DV, nats) start -> end, per seed | "
        + ", ".join(f"{r['mi_init']['dv']:.2f} -> {r['mi']['dv']:.2f}" for r in runs)
        + " |",
        f"| wall per run (s), per seed | {', '.join(f'{w:.0f}' for w in walls)} |",
        f"| CPU per run (s), per seed | {', '.join(f'{c:.0f}' for c in (r['cpu_s'] for r in runs))} |",
        "",
        "| floor | met |",
        "| --- | --- |",
        *(f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in floors.items()),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "floors.md").write_text("\n".join(lines) + "\n")
    (args.out / "floors.json").write_text(json.dumps(result, indent=2))
    print("\n".join(lines))
    sys.exit(0 if all(floors.values()) else 1)


if __name__ == "__main__":
    main()
