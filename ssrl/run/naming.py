"""Run and sweep folders named by their overrides, so the same command finds the same folder again."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from omegaconf import OmegaConf

#: Overrides that do not change what a run computes, left out of its name.
NOT_IN_NAME = ("resume", "trainer.enable_progress_bar")
MAX_NAME = 120


def run_name(overrides: Iterable[str]) -> str:
    """'estimator=jsd,paradigm=sdmi' for those overrides (sorted), 'default' for none; names longer
    than MAX_NAME characters keep a prefix and a hash of the whole."""
    kept = sorted(
        o.lstrip("+~")
        for o in overrides
        if o.lstrip("+~").split("=")[0] not in NOT_IN_NAME and not o.startswith("hydra")
    )
    name = ",".join(kept).replace("/", "-") or "default"
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[: MAX_NAME - 11]}~{digest}"
    return name


def register_resolvers() -> None:
    """${ssrl_name:${hydra.overrides.task}} names run folders (used by conf/train.yaml)."""
    if not OmegaConf.has_resolver("ssrl_name"):
        OmegaConf.register_new_resolver("ssrl_name", lambda overrides: run_name(list(overrides)))
    if not OmegaConf.has_resolver("ssrl_small_images"):
        OmegaConf.register_new_resolver("ssrl_small_images", lambda size: int(size) <= 64)
