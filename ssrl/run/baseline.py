"""The untrained baseline pinned down: the probe and kNN of an untrained backbone over
``eval.baseline_inits`` random initialisations (no training), computed once per data set and backbone
and cached, so that every run of a grid reads the same baseline.

The cache file ``<eval.baseline_cache_dir>/<key>.json`` is keyed by a hash of what changes the result
(``cache_key``): the data config (its batch size and workers aside, which change no feature), the
backbone's own fields (not the projector's: the probes read backbone features), the number of inits, the
kNN's k and temperature and the probes' protocol. Under a concurrent sweep the first job to take the
file lock ``<key>.lock`` computes it and writes it atomically (temporary file, then rename); the others
wait on the lock and read it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor

from ssrl.analysis.accuracy import Group, accuracy_interval, correctness, run_difference_interval
from ssrl.data.views import seed_of
from ssrl.evaluation.probes import evaluate_backbone
from ssrl.nets.backbones import build_backbone
from ssrl.run.summary import read_json, write_json_atomic

#: Init i of the baseline draws its weights from seed_of(BASELINE_SEED, i), apart from every run's seed.
BASELINE_SEED = 7_919
#: Data fields that change no backbone feature: left out of the cache key.
NOT_IN_KEY = ("batch_size", "num_workers")
BACKBONE_FIELDS = ("name", "in_channels", "cifar_stem", "width")
KINDS = ("probe", "knn")


def cache_key(cfg: Any, protocol: str) -> str:
    """A hash (16 hex digits) of what the baseline depends on (module docstring)."""
    data = OmegaConf.to_container(cfg.data, resolve=True, enum_to_str=True)
    data = {k: v for k, v in data.items() if k not in NOT_IN_KEY}
    described = {
        "data": data,
        "backbone": {k: cfg.backbone[k] for k in BACKBONE_FIELDS},
        "inits": cfg.eval.baseline_inits,
        "knn": [cfg.eval.knn_k, cfg.eval.knn_temperature],
        "protocol": protocol,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir(cfg: Any) -> Path:
    return Path(os.path.expanduser(cfg.eval.baseline_cache_dir))


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl.flock) on ``path``, held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compute(
    cfg: Any, loaders: Callable[[], dict[str, Iterable]], prepare: Callable[[Tensor], Tensor], device: torch.device
) -> dict[str, Any]:
    """The probe and kNN of ``cfg.eval.baseline_inits`` untrained backbones, each fit on the labeled split:
    {"val"|"test": {"probe_acc", "knn_acc": [per init], "probe_correct", "knn_correct": [0/1 strings]}}.
    The global random state is left as it was (the run's training draws what it would without this)."""
    b, results = cfg.backbone, {}
    for i in range(cfg.eval.baseline_inits):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(BASELINE_SEED, i))
            backbone, _ = build_backbone(b.name, b.in_channels, b.cifar_stem, b.width)
        for split, r in evaluate_backbone(backbone.to(device), loaders(), prepare, device, cfg.eval).items():
            for field, value in r.items():
                results.setdefault(split, {}).setdefault(field, []).append(value)
    return results


def pinned(
    cfg: Any,
    loaders: Callable[[], dict[str, Iterable]],
    prepare: Callable[[Tensor], Tensor],
    device: torch.device,
    protocol: str,
) -> dict[str, Any]:
    """The cached baseline of this data set and backbone, computed (``compute``) and written on a miss:
    {"key", "inits", "seconds" (to compute it), "computed" (by this call), "val", "test"}."""
    key = cache_key(cfg, protocol)
    path = cache_dir(cfg) / f"{key}.json"
    with file_lock(path.with_suffix(".lock")):
        cached = read_json(path)
        if cached is not None:
            return {**cached, "computed": False}
        started = time.perf_counter()
        entry = {"key": key, "inits": cfg.eval.baseline_inits, **compute(cfg, loaders, prepare, device)}
        entry["seconds"] = time.perf_counter() - started
        write_json_atomic(path, entry)
    return {**entry, "computed": True}


def interval_dict(interval: Any) -> dict[str, float]:
    return {"mean": interval.mean, "low": interval.low, "high": interval.high, "df": interval.df}


def summary_fields(baseline: dict[str, Any], per_image: dict[str, dict[str, str]]) -> dict[str, Any]:
    """summary.json's ``baseline`` (the cache entry, with each split's mean accuracy and its interval over
    the inits and the images, ssrl.analysis.accuracy) and ``gain`` (this run's test accuracy minus the
    baseline's mean, with an interval that carries the baseline's inits and the test images; one run's own
    seed-to-seed variance cannot be estimated from it alone: a cell's gain over seeds adds it)."""
    block = {k: baseline[k] for k in ("key", "inits", "seconds", "computed")}
    gain = {}
    for split in ("val", "test"):
        block[split] = dict(baseline[split])
        for kind in KINDS:
            group = Group(correctness(baseline[split][f"{kind}_correct"]))
            block[split][f"{kind}_interval"] = interval_dict(accuracy_interval(group))
            if split == "test":
                run = Group(correctness([per_image[split][f"{kind}_correct"]]))
                gain[kind] = interval_dict(run_difference_interval(run, group))
    return {"baseline": block, "gain": gain}
