"""Resuming a run is continuing the same experiment: the config a run folder was trained with, against
the config of the command that resumes it.

What may change on resume (``MAY_CHANGE``) does not change what the run computes: where the data lie and
how they are read, logging and progress display, the checkpoint cadence, speed switches, the label an
experiment gives the run. ``trainer.max_epochs`` and ``trainer.max_steps`` may grow, so that a run can be
extended, when the learning rate at each step does not depend on the run's length (``extendable``):
under optim.schedule=cosine the length sets the schedule, so a longer run is another experiment. Every
other field determines the result: a difference is refused with one line that names the fields, before
any work, and the run folder is left as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ssrl.errors import ResumeRefused
from ssrl.run.checkpoint import load_file
from ssrl.run.summary import read_summary

#: Fields (or whole groups) that may differ between a run and its resumption.
MAY_CHANGE = (
    "resume",
    "checkpoint_every_minutes",
    "expected",
    "comparisons",
    "logger",
    "data.root",
    "data.download",
    "data.num_workers",
    "trainer.accelerator",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "trainer.channels_last",
    "trainer.compile",
)
#: Fields that may grow on resume (extending the run) when ``extendable`` says so.
LENGTH = ("trainer.max_epochs", "trainer.max_steps")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} of a nested dict (lists are values)."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in flat.items()}


def _may_change(key: str) -> bool:
    return any(key == f or key.startswith(f"{f}.") for f in MAY_CHANGE)


def _length(value: Any) -> float:
    return float("inf") if value is None or value < 0 else float(value)


def extendable(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a longer run gives the learning rate an uninterrupted run of that length would: a constant
    schedule, whose warm-up (in epochs, converted with the steps of an epoch) does not move either."""
    if old.get("optim.schedule") != "constant" or new.get("optim.schedule") != "constant":
        return False
    no_warmup = not old.get("optim.warmup_epochs")
    return no_warmup or (_length(old.get("trainer.max_steps")) == _length(new.get("trainer.max_steps")) == float("inf"))


def stored_config(run_dir: Path, checkpoint: Path) -> dict[str, Any] | None:
    """The resolved config the run in ``run_dir`` trained with: from its checkpoint (what a resume
    continues), else from its summary.json; None for a folder with neither."""
    if checkpoint.is_file():
        state = load_file(checkpoint).get("ssrl", {})
        if "config" in state:
            return state["config"]
    return (read_summary(run_dir) or {}).get("config")


def compare(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(fields that differ and may not, fields that grow the run's length). Fields the stored config
    lacks (added to ssrl after the run started) are not compared."""
    old_flat, new_flat = flatten(old), flatten(new)
    refused, longer = [], []
    for key in sorted(set(old_flat) & set(new_flat)):
        before, after = old_flat[key], new_flat[key]
        if before == after or _may_change(key):
            continue
        if key in LENGTH and _length(after) > _length(before) and extendable(old_flat, new_flat):
            longer.append(key)
        else:
            refused.append(key)
    return refused, longer


def check_resume(cfg: Any, run_dir: Path, checkpoint: Path) -> list[str]:
    """Raise ResumeRefused if the run in ``run_dir`` trained with another config than ``cfg`` (resolved,
    device defaults filled); return the length fields that grew (an extended run), else []."""
    old = stored_config(run_dir, checkpoint)
    if old is None:
        return []
    new = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    refused, longer = compare(old, new)
    if refused:
        old_flat, new_flat = flatten(old), flatten(new)
        asked = ", ".join(f"{k}={new_flat[k]}" for k in refused)
        trained = ", ".join(f"{k}={old_flat[k]}" for k in refused)
        hint = ""
        if any(k in LENGTH for k in refused):
            hint = " (trainer.max_epochs / max_steps may only grow, and only under optim.schedule=constant)"
        raise ResumeRefused(
            f"{asked}: {run_dir} holds a run trained with {trained}{hint}; a resumed run must be the same "
            "experiment: rerun with those values, add resume=false to train this folder again from scratch, "
            "or use another folder (hydra.run.dir=...)"
        )
    return longer


def restore_hydra_record(run_dir: Path, checkpoint: Path, output_subdir: str | None) -> None:
    """After a refused resume: put back the run's own overrides and config in Hydra's record of the run
    (<run>/.hydra/overrides.yaml, config.yaml), which Hydra rewrote for the refused command before the job
    started, and which ssrl-report reads."""
    if output_subdir is None:
        return
    folder = run_dir / output_subdir
    summary = read_summary(run_dir) or {}
    if "overrides" in summary:
        OmegaConf.save(OmegaConf.create(list(summary["overrides"])), folder / "overrides.yaml")
    config = stored_config(run_dir, checkpoint)
    if config is not None:
        OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
