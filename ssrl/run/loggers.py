"""The run's loggers: any Lightning logger, named by ``_target_`` in the ``logger`` config group.

Each option of conf/logger/ holds one entry ``<key>: {_target_: <logger class>, <its arguments>}``;
``logger=[tensorboard,wandb]`` merges several options, and ``+logger.<key>._target_=<class>`` adds any
other class. A class is given what it takes from the run, where its config leaves it unset
(``build_loggers``): ``save_dir`` the run folder (a relative ``save_dir`` is taken under it), ``name``
and ``run_name`` the run's name (its overrides; in a multirun its values of the swept keys), ``place``
where ssrl's TensorBoard logger writes.

Every logger receives the same metric names (``metric_name``: ``MI/val/dv``, ``collapse/effective_rank``,
``probes/linear_test``, ...), the resolved config as hyperparameters (``start``), and the final results
at the last step, the untrained encoder's at step 0 (``log_final``). A logger with a
``log_summary(summary, step)`` method (ssrl's TensorBoard logger) records the final summary itself.

A run folder trained before loggers took ``_target_`` has ``logger: {name: tensorboard}`` in its stored
config; ``logger_keys`` reads both forms.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ssrl.errors import ConfigError

# ----------------------------------------------------------------------------------------- metric names
#: Lightning metric name (prefix) -> the name every logger receives (prefix); the first match wins.
METRIC_PREFIXES = (
    ("train/mi/", "MI/train/"),
    ("val/mi/", "MI/val/"),
    ("val/mi_probe/", "MI/probe/"),  # the MI probe (ssrl.run.mi_probe): a fresh critic, not the run's own
    ("val/online_probe_acc", "probes/online_linear_val"),
    ("train/probe_loss", "probes/online_linear_loss"),
    ("val/bound/", "training/bound_val/"),
    ("train/bound/", "training/bound/"),
    ("train/loss", "training/loss"),
    ("train/joint", "training/joint_J"),
    ("train/marginal", "training/marginal_M"),
    ("train/", "training/"),
    ("lr/", "training/lr/"),
    ("val/", "collapse/"),  # effective rank, embedding std, alignment, uniformity, collapsed (held-out)
)


def metric_name(name: str) -> str:
    """The name a metric logged by the model as ``name`` has in every logger (``val/mi/dv`` -> ``MI/val/dv``)."""
    for prefix, renamed in METRIC_PREFIXES:
        if name.startswith(prefix):
            return renamed + name[len(prefix) :]
    return name


def final_metrics(summary: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(the untrained encoder's probe and kNN accuracies, logged at step 0; the trained encoder's and
    ``collapse/collapsed``, logged at the last step) of a completed summary, under their logged names:
    ``probes/<linear|knn>_<test|val>[_untrained]``."""
    untrained, trained = {}, {}
    for split, accuracies in (("test", summary), ("val", summary.get("val") or {})):
        for key, name in (("probe_acc", "linear"), ("knn_acc", "knn")):
            if key in accuracies:
                trained[f"probes/{name}_{split}"] = float(accuracies[key])
            if f"{key}_init" in accuracies:
                untrained[f"probes/{name}_{split}_untrained"] = float(accuracies[f"{key}_init"])
    trained["collapse/collapsed"] = float(bool(summary.get("collapsed")))
    return untrained, trained


# ----------------------------------------------------------------------------------------- the config
#: Logger classes that need a package ssrl does not install: class name -> (module, ssrl's extra).
EXTRAS = {"WandbLogger": ("wandb", "wandb"), "MLFlowLogger": ("mlflow", "mlflow")}


def logger_keys(node: Mapping[str, Any] | None) -> list[str]:
    """The keys of the loggers in a (resolved) logger config; ``{name: tensorboard}`` (the stored config
    of a run from before ``_target_``) reads as ``["tensorboard"]``."""
    node = node or {}
    if isinstance(node.get("name"), str):
        return [node["name"]]
    return [key for key, spec in node.items() if isinstance(spec, Mapping)]


def _arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if not str(k).startswith("_")}


def logger_class(key: str, spec: Mapping[str, Any]) -> type:
    """The class ``logger.<key>._target_`` names. Raises ConfigError (one line) when it is missing,
    cannot be imported, needs a package that is not installed (naming ssrl's extra), or does not take
    the arguments its config gives."""
    target = spec.get("_target_") if isinstance(spec, Mapping) else None
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"logger.{key}: needs _target_, a logger class such as pytorch_lightning.loggers.CSVLogger")
    module_name, _, class_name = target.rpartition(".")
    if class_name in EXTRAS:
        package, extra = EXTRAS[class_name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"logger.{key} ({class_name}) needs the {package} package, which is not installed: "
                f"pip install 'ssrl[{extra}]'"
            )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"logger.{key}._target_={target}: cannot be imported ({exc})") from exc
    try:
        inspect.signature(cls).bind_partial(**_arguments(spec))
    except TypeError as exc:
        taken = ", ".join(p for p in inspect.signature(cls).parameters if p not in ("self", "kwargs"))
        raise ConfigError(f"logger.{key}: {exc} ({class_name} takes {taken})") from exc
    return cls


def check_loggers(node: Mapping[str, Any]) -> None:
    """Raise ConfigError, before any work, if a logger of the config cannot be built."""
    for key in logger_keys(node):
        logger_class(key, node[key])


def save_dir(spec: Mapping[str, Any], run_dir: Path) -> Path:
    """Where a logger with this config writes: its ``save_dir`` (under ``run_dir`` when relative), else
    ``run_dir``."""
    given = spec.get("save_dir")
    return Path(run_dir) / given if given is not None else Path(run_dir)


# ----------------------------------------------------------------------------------------- the loggers
def _with_metric_names(logger: Any) -> Any:
    """``logger``, receiving every metric under ``metric_name``'s name (its ``log_metrics`` wrapped)."""
    log_metrics = logger.log_metrics

    def renamed(metrics: Mapping[str, Any], step: int | None = None) -> None:
        log_metrics({metric_name(k): v for k, v in metrics.items()}, step)

    logger.log_metrics = renamed
    return logger


def _local_store(cls: type, arguments: Mapping[str, Any]) -> None:
    """MLflow keeps a store in the run folder only with MLFLOW_ALLOW_FILE_STORE (MLflow 3 put its file
    store in maintenance mode); given a tracking URI, MLflow writes there and this does nothing."""
    if cls.__name__ == "MLFlowLogger" and not arguments.get("tracking_uri"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def build_loggers(node: Mapping[str, Any], run_dir: Path, run_name: str, place: Any) -> list[Any]:
    """One Lightning logger per entry of the logger config, receiving ssrl's metric names. Each class is
    given, when it takes them and its config leaves them unset, ``name`` and ``run_name`` (``run_name``)
    and ``place`` (ssrl's TensorBoard logger); a class taking ``save_dir`` writes under ``run_dir``."""
    from hydra.utils import instantiate

    loggers = []
    for key in logger_keys(node):
        spec = node[key]
        cls = logger_class(key, spec)
        given = {"name": run_name, "run_name": run_name, "place": place}
        takes = inspect.signature(cls).parameters
        arguments = {k: v for k, v in given.items() if k in takes and k not in spec}
        if "save_dir" in takes:  # the run folder, or the config's save_dir under it
            arguments["save_dir"] = str(save_dir(spec, run_dir))
        _local_store(cls, {**_arguments(spec), **arguments})
        # the config's arguments as plain containers; the run's (a Place among them) passed as they are
        build = instantiate(spec, _partial_=True, _convert_="all")
        loggers.append(_with_metric_names(build(**arguments)))
    return loggers


def start(loggers: list[Any], config: Mapping[str, Any]) -> None:
    """The resolved config as every logger's hyperparameters."""
    for logger in loggers:
        logger.log_hyperparams(dict(config))


def log_final(loggers: list[Any], summary: Mapping[str, Any], step: int) -> None:
    """The final results in every logger: ``final_metrics`` at step 0 and at ``step`` (the last batch's),
    or the logger's own ``log_summary``."""
    untrained, trained = final_metrics(summary)
    for logger in loggers:
        if hasattr(logger, "log_summary"):
            logger.log_summary(summary, step)
        else:
            logger.log_metrics(untrained, 0)
            logger.log_metrics(trained, step)


def close(loggers: list[Any], ok: bool) -> None:
    """Finalize every logger; end a W&B run (Lightning leaves it open, and the next job of a multirun in
    this process would log into it)."""
    from pytorch_lightning.loggers import WandbLogger  # (imports wandb only when a run starts)

    for logger in loggers:
        logger.finalize("success" if ok else "failed")
        if isinstance(logger, WandbLogger) and logger._experiment is not None:  # a run was started
            logger.experiment.finish(exit_code=0 if ok else 1)


@contextmanager
def logging_to(loggers: list[Any], config: Mapping[str, Any]) -> Iterator[None]:
    """``start`` the loggers on entry; ``close`` them on exit, as failed if an exception leaves the block."""
    start(loggers, config)
    ok = False
    try:
        yield
        ok = True
    finally:
        close(loggers, ok)
