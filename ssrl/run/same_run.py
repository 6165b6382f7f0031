"""Runs that cannot differ: a sweep axis that cannot change a run does not multiply it.

Two configs train the same run when they agree on everything that determines the result once these
axes, which cannot change it, are set aside:
- logging, resuming and checkpointing fields, ``expected`` (what an experiment expects of a run) and
  ``comparisons`` (what its report compares);
- the estimator under a statistical surrogate (marginal=barlow or vicreg): the loss is built from batch
  statistics of the embeddings, not from the critic's scores;
- with lambda = 0 (marginal.weight = 0), the choice between cos_dv, infonce and nwj, and marginal=none
  against marginal=exact: the loss is then -J, and J = mean_i S_ii for all three;
- without a predictor (predictor=none), the predictor's other fields (width, learning-rate scale).
The critic and its temperature stay: the MI reported on val is computed with them. In a multirun, a
job whose run is one that a sibling folder already completed is not trained again: its summary is that
run's results under its own config and overrides, with ``same_run_as`` naming the folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ssrl.run.summary import read_summary

#: Top-level fields that never change what a run computes.
NOT_RESULT = ("logger", "resume", "checkpoint_every_minutes", "expected", "comparisons")
#: Trainer fields that only change what is shown.
NOT_RESULT_TRAINER = ("enable_progress_bar", "log_every_n_steps")
JOINT_ONLY = ("cos_dv", "infonce", "nwj")
SURROGATES = ("barlow", "vicreg")
ESTIMATOR_OPTIONS = ("name", "symmetric", "same_view_negatives")


def training_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config (plain dict) with every axis that cannot change the run set aside."""
    ident = {k: copy.deepcopy(v) for k, v in config.items() if k not in NOT_RESULT}
    for key in NOT_RESULT_TRAINER:
        ident.get("trainer", {}).pop(key, None)
    if (ident.get("predictor") or {}).get("name") == "none":
        ident["predictor"] = {"name": "none"}
    marginal, estimator = ident["marginal"], ident["estimator"]
    if marginal["name"] in SURROGATES:
        for key in ESTIMATOR_OPTIONS:
            estimator.pop(key, None)
    elif marginal["weight"] == 0 and estimator["name"] in JOINT_ONLY:
        for key in ESTIMATOR_OPTIONS:
            estimator.pop(key, None)
        estimator["name"] = "joint only: mean_i S_ii"
        marginal["name"] = "exact or none"
    return ident


#: Fields of a completed summary that belong to the run folder, not to the run's results.
OWN_FIELDS = ("overrides", "run_dir", "config", "paradigm")


def find_same_run(run_dir: Path, config: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """A completed sibling of ``run_dir`` (same sweep folder) that trained the same run, and its summary."""
    wanted = training_identity(config)
    for folder in sorted(p for p in run_dir.parent.iterdir() if p.is_dir() and p != run_dir):
        summary = read_summary(folder) or {}
        done = summary.get("status") == "completed" and "config" in summary and not summary.get("same_run_as")
        if done and training_identity(summary["config"]) == wanted:
            return folder, summary
    return None


def reuse(source: Path, summary: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The completed summary of this folder: ``source``'s results, this job's own fields."""
    results = {k: v for k, v in summary.items() if k not in OWN_FIELDS}
    return {**results, **own, "same_run_as": source.name}
