"""summary.json: the one file per run that eval, report and a rerun read. Written atomically.

status is "running" (rewritten after every held-out evaluation, with the curves so far),
"completed" (every field below filled) or "failed" (with ``error``). A summary that exists is whole.

Fields of a completed run:
  probe_acc, probe_acc_init   linear probe on frozen backbone features, test split (0..1),
                              trained and untrained encoder
  knn_acc, knn_acc_init       weighted kNN on the same features (k, temperature in ``protocol``)
  val                         the same four on the val split: what choices are made on
  per_image                   {"test": {"probe_correct", "knn_correct"}, "val": {...}}: the trained encoder's
                              per-image correctness, a string of 0/1 in the split's fixed order
  baseline                    the pinned untrained baseline (ssrl.run.baseline): key, inits, seconds, computed
                              (by this run, else read from the cache), and per split the per-init accuracies
                              and 0/1 strings, {probe,knn}_interval: the inits' mean with its 95% interval
  gain                        {"probe", "knn"}: test accuracy minus the baseline's mean, 95% interval over the
                              baseline's inits and the test images
  effective_rank, embedding_std, effective_rank_backbone, alignment, uniformity   (val split)
  mi, mi_init                 MI in nats on val pairs at the end and before training: {"dv", "infonce"}
  mi_probe, mi_probe_init     the MI probe (ssrl.mi.probe): MI in nats, {"dv", "infonce"}, of a critic trained
                              afresh on frozen train-pair embeddings and scored on val pairs, at the end and
                              before training (null with eval.mi_probe_every_n_epochs=0); mi_probe_s: its
                              seconds in all (each measurement's are in history, mi_probe_s)
  bound                       {estimator: its own J - M on the same pairs} for all four (own units)
  collapsed                   the rule of ``ssrl.evaluation.collapse.is_collapsed``
  epochs, steps, wall_s, overrides, history (the val metrics after every epoch), protocol
  ran                         what ran, beyond the config (ssrl.run.what_ran): precision (as Lightning ran
                              it), device, device_name, processes, threads, torch, cuda
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):  # not JSON, or not text
        return None


def write_summary(run_dir: Path, data: dict[str, Any]) -> None:
    write_json_atomic(run_dir / SUMMARY, data)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary; None when there is none, or the file is not JSON or holds no object."""
    data = read_json(Path(run_dir) / SUMMARY)
    return data if isinstance(data, dict) else None
