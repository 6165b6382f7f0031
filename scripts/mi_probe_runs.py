"""The MI probe (ssrl/mi/probe.py) on saved runs: each critic on each run's last checkpoint, beside the
run's own held-out MI (summary.json ``mi``, under its training critic). Runs trained before the probe
existed get it this way.

    python scripts/mi_probe_runs.py outputs/runs/default outputs/multirun/collapse/*/
    python scripts/mi_probe_runs.py RUN --max-images 4096 --device cuda

Prints one Markdown row per run and critic.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ssrl.evaluate_run import load_checkpoint
from ssrl.mi.probe import CRITICS
from ssrl.run.mi_probe import measure
from ssrl.run.summary import read_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders (with checkpoints/last.ckpt)")
    parser.add_argument("--max-images", type=int, default=512, help="eval.mi_probe_max_images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print("| run | critic | probe dv | probe infonce | run's own mi dv | run's own mi infonce | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        model, data, run_dir = load_checkpoint(run)
        data.setup()
        model.to(args.device)
        own = (read_summary(run_dir) or {}).get("mi") or {}
        cfg = model.cfg
        OmegaConf.set_struct(cfg, False)
        cfg.eval.mi_probe_max_images = args.max_images
        for critic in CRITICS:
            cfg.eval.mi_probe_critic = critic
            started = time.perf_counter()
            result = measure(model, data.splits, cfg)
            seconds = time.perf_counter() - started
            own_cells = " | ".join(f"{own[k]:.2f}" if k in own else "n/a" for k in ("dv", "infonce"))
            print(
                f"| {run_dir.name} | {critic} | {result['dv']:.2f} | {result['infonce']:.2f} | {own_cells} "
                f"| {seconds:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
