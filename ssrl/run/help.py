"""`ssrl-train --help`: what ssrl-train is, example commands, and the config groups a user picks.

Hydra prints conf/train.yaml's ``hydra.help.template``; its ``${ssrl_groups:}`` lists the groups found
in conf/ with their options (not the internal ``schema/`` groups, which live in Hydra's ConfigStore).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import OmegaConf

#: How each group is picked on the command line; groups not listed here are picked as group=option.
PICKED_AS = {"preset": "+preset", "experiment": "+experiment", "ablation": "+ablation", "launcher": "hydra/launcher"}
ORDER = ("paradigm", "estimator", "marginal", "predictor", "backbone", "data", "optim", "trainer", "logger")


def config_groups(config_dir: str | Path) -> str:
    """One line per group of ``config_dir``: 'group=a|b|c', and the default job's choice (conf/train.yaml)."""
    root = Path(config_dir)
    entries = yaml.safe_load((root / "train.yaml").read_text()).get("defaults", [])
    defaults = {k: v for entry in entries if isinstance(entry, dict) for k, v in entry.items()}
    folders = [p for p in root.iterdir() if p.is_dir() and any(p.glob("*.yaml"))]
    folders += [p for p in (root / "hydra").glob("*") if p.is_dir() and any(p.glob("*.yaml"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    folders.sort(key=lambda p: (rank.get(p.name, len(ORDER)), p.name))
    lines = []
    for folder in folders:
        options = "|".join(sorted(p.stem for p in folder.glob("*.yaml")))
        default = f"   (default: {defaults[folder.name]})" if folder.name in defaults else ""
        lines.append(f"  {PICKED_AS.get(folder.name, folder.name)}={options}{default}")
    return "\n".join(lines)


def register_help_resolver(config_dir: str | Path) -> None:
    if not OmegaConf.has_resolver("ssrl_groups"):
        OmegaConf.register_new_resolver("ssrl_groups", lambda: config_groups(config_dir))
