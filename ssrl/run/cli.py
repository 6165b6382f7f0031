"""Check a command line before Hydra runs it: every value of every override is composed once and
validated, and a failure becomes one line that names the field and the allowed values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from ssrl.data.datasets import load_splits
from ssrl.errors import ConfigError
from ssrl.run.loggers import check_loggers
from ssrl.validate import check_device, check_sizes, validate


def variants(overrides: list[str], config_loader: Any = None) -> list[list[str]]:
    """The first value of every sweep, then each other value of each sweep in turn. A key given twice
    keeps its last value, in the place of its first, as Hydra's sweeper does (an experiment file's
    sweeps, then the command line's). A glob sweep (``'estimator=glob(j*)'``) needs ``config_loader``
    (Hydra's) to list a group's options."""
    by_key: dict[str, list[str]] = {}
    for o in OverridesParser.create(config_loader=config_loader).parse_overrides(overrides):
        key = o.get_key_element()
        by_key[key] = [f"{key}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
    options = list(by_key.values())
    base = [values[0] for values in options]
    result = [base]
    for i, values in enumerate(options):
        result += [base[:i] + [v] + base[i + 1 :] for v in values[1:]]
    return result


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "msg", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _fields_of(config_name: str, overrides: list[str], key: str) -> str:
    """The fields of the node that holds ``key``, in the config the other overrides give."""
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    others = [o for o in overrides if o.lstrip("+~").split("=")[0] != key]
    try:
        node = compose(config_name, overrides=others)
        node = OmegaConf.select(node, parent) if parent else node
        return ", ".join(node.keys())
    except Exception:  # the other overrides fail too: the first error is the one to report
        return "?"


def _explain(exc: BaseException, config_name: str, overrides: list[str]) -> str:
    not_default = re.match(r"Could not override '([^']+)'\. No match in the defaults list", str(exc))
    if not_default:  # a group that is not in the defaults list: conf/preset, experiment, ablation, arm
        group = not_default.group(1)
        wanted = next((o for o in overrides if o.split("=")[0] == group), group)
        return f"{wanted}: {group} is not in the defaults list, so there is none to override; write +{wanted}"
    if isinstance(exc, MissingConfigException) and exc.options:
        group = (exc.missing_cfg_file or "").split("/")[0]
        wanted = next((o for o in overrides if o.lstrip("+~").split("=")[0] == group), exc.missing_cfg_file)
        return f"{wanted}: no such option; allowed: {', '.join(exc.options)}"
    cause = _root_cause(exc)
    key = getattr(cause, "full_key", None)
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
        return f"{key}: no such field; allowed fields here: {_fields_of(config_name, overrides, key)}"
    if isinstance(cause, OmegaConfBaseException) and key:
        value = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=")[0] == key), None)
        return f"{key}{'=' + value if value is not None else ''}: {_first_line(cause)}"
    return _first_line(cause)


def experiment_sweeps(config_name: str, overrides: list[str], config_loader: Any, multirun: bool) -> list[str]:
    """The sweeps in hydra.sweeper.params (an experiment file's) of the config of ``overrides`` (its
    first variant), as overrides, when it runs as a multirun (``multirun``: the command line's -m, or
    the config's hydra.mode); none when it does not compose (check() reports why)."""
    try:
        cfg: Any = compose(config_name, overrides=variants(overrides, config_loader)[0], return_hydra_config=True)
    except (ConfigCompositionException, OmegaConfBaseException):
        return []
    if not (multirun or cfg.hydra.mode == RunMode.MULTIRUN):
        return []  # a single run: Hydra does not sweep
    params = cfg.hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def check(config_dir: str, config_name: str, overrides: list[str], multirun: bool = False) -> None:
    """Raise ConfigError with a one-line message if any variant of ``overrides`` cannot run, the sweeps
    of the experiment file they name (in a multirun, ``multirun``: -m) included."""
    overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    sizes: dict[str, tuple[int, int]] = {}  # data config -> (training split, held-out split), loaded once
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        loader = GlobalHydra.instance().hydra.config_loader
        for variant in variants(experiment_sweeps(config_name, overrides, loader, multirun) + overrides, loader):
            try:
                cfg: Any = compose(config_name, overrides=variant)
            except (ConfigCompositionException, OmegaConfBaseException) as exc:
                raise ConfigError(_explain(exc, config_name, variant)) from exc
            try:
                validate(cfg)
                check_device(cfg.trainer)
                check_loggers(cfg.logger)
            except OmegaConfBaseException as exc:
                raise ConfigError(_explain(exc, config_name, variant)) from exc
            key = OmegaConf.to_yaml(cfg.data)
            if key not in sizes:
                splits = load_splits(cfg.data)
                sizes[key] = (len(splits.train), len(splits.val))
            check_sizes(cfg, *sizes[key])


def command_line_overrides(argv: list[str]) -> tuple[list[str], bool]:
    """(overrides, whether Hydra will run at all) of an ssrl-train command line."""
    args = get_args_parser().parse_args(argv)
    informational = args.help or args.hydra_help or args.cfg or args.info or args.shell_completion
    return list(args.overrides), not informational


def single_run(config_dir: str, config_name: str, overrides: list[str], multirun: bool) -> tuple[Any, Path] | None:
    """(config, run folder) of a command line that runs one job, None for a multirun."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        try:
            cfg: Any = compose(config_name, overrides=overrides, return_hydra_config=True)
        except Exception:  # a hydra.* override Hydra itself will report (check() leaves those to it)
            return None
    if multirun or cfg.hydra.mode == RunMode.MULTIRUN:
        return None
    run_dir = Path(str(cfg.hydra.run.dir))
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, run_dir
