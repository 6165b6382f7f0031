"""The config stored in an older run's checkpoint, brought up to today's: fields added to ssrl since the
run was trained (absent from its config) take today's defaults for the run's options."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

#: Config groups whose option a stored config names (its ``<group>.name``, the option's file name).
NAMED_GROUPS = ("paradigm", "estimator", "marginal", "predictor", "backbone", "data", "optim")
#: Left as stored: which loggers a run wrote to says nothing about its model or data.
NOT_FILLED = ("logger",)


def todays_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """conf/train.yaml composed with the options ``config`` names (``NAMED_GROUPS``; the default option
    where no such file exists), resolved."""
    from ssrl.train import CONFIG_DIR  # registers the schemas; imported here, as ssrl.train imports this package

    options = [
        f"{group}={name}"
        for group in NAMED_GROUPS
        if (name := (config.get(group) or {}).get("name")) and (Path(CONFIG_DIR) / group / f"{name}.yaml").is_file()
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=options), resolve=True, enum_to_str=True)


def with_todays_defaults(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``config`` with every field it lacks at today's default, {field: the default filled}); fields
    under ``NOT_FILLED`` and fields below a value that is not a mapping are left out."""
    from ssrl.run.resume import flatten  # here: ssrl.run.resume reads checkpoints through ssrl.run.checkpoint

    stored, today = flatten(config), flatten(todays_defaults(config))
    filled = {
        key: value
        for key, value in today.items()
        if key not in stored
        and key.split(".")[0] not in NOT_FILLED
        and not any(".".join(key.split(".")[:i]) in stored for i in range(1, key.count(".") + 1))
    }
    result = copy.deepcopy(config)
    for key, value in filled.items():
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result, filled
