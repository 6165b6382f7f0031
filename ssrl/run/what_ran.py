"""What a run ran on, beyond its config: what can change its numbers from one machine to another.

Recorded in summary.json (``ran``) and given to every logger with the config (TensorBoard's HParams
columns ``ran.*``); docs/method.md ("Runs that repeat") says which differences remain across machines.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else the machine type (``x86_64``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def what_ran(trainer: Any) -> dict[str, Any]:
    """{precision: what Lightning ran, which may differ from trainer.precision (16-mixed on the CPU runs
    as bf16-mixed), device: the root device (``cpu``, ``cuda:0``), device_name: the GPU's or the CPU's
    model, processes: Lightning's world size, threads: torch's intra-op CPU threads (OMP_NUM_THREADS
    sets them; a sum splits differently across threads), torch, cuda: versions (cuda null on the CPU)}."""
    device = trainer.strategy.root_device
    gpu = device.type == "cuda"
    return {
        "precision": str(trainer.precision),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if gpu else cpu_name(),
        "processes": trainer.world_size,
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda if gpu else None,
    }
