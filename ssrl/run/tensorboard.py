"""TensorBoard laid out for an ablation grid.

Where events go: every run writes to ``<logdir>/<name>``, where ``<logdir>`` is ``<sweep>/tensorboard``
in a multirun and ``<run folder>/tensorboard`` for a single run, and ``<name>`` is short: the values of
the keys the sweep varies (``jmi,cos_dv``), or a single run's overrides (``default`` for none). So
``tensorboard --logdir <sweep>/tensorboard`` names each run by what distinguishes it.

Tags (the metric names every logger gets: ssrl.run.loggers.metric_name) read top-down (Time Series sorts tags
by name, groups them by their first segment and opens the first two groups): ``MI/`` (train and held-out MI in
nats, per estimator, under the run's critic; the MI probe's, ``MI/probe/``), ``collapse/`` (the diagnostics on
the held-out embeddings), ``probes/``, ``training/`` (loss, its terms, each estimator's own bound value in its
own units, learning rates named by what they drive). ``collapsed`` is a boolean: per epoch it is written as
text (smoothing would draw a 0/1 series as a fraction); the final value is one scalar point at the last step,
which smoothing leaves as it is, and which HParams reads.

HParams: each run writes only its session (its flattened config and the swept keys' values, start and
end); the sweep writes one experiment for all its runs (``write_sweep_experiment``, when the multirun
starts and again when it ends), with the swept keys first and their values, every key of every run,
and the final metrics with names and descriptions. A single run writes an experiment of its own, with
its overrides and the paper's axes first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from ssrl.mi.estimators import MI_IN_NATS
from ssrl.run.loggers import final_metrics, logger_keys
from ssrl.run.naming import run_name

FOLDER = "tensorboard"
SWEEP_FILE = "sweep.json"  # the swept keys and their values, in <sweep>/tensorboard, for the jobs
SWEEP_EVENTS = ".ssrl-sweep"  # suffix of the sweep's experiment event file, rewritten at start and end
#: The paper's axes: a single run's HParams columns after its own overrides.
AXES = ("paradigm.name", "estimator.name", "marginal.name", "predictor.name", "data.name")

#: Metrics (under their logged names, ssrl.run.loggers.metric_name) not drawn as scalars during training:
#: Lightning's epoch counter, and the boolean, written as text (its final value is one scalar point).
NOT_SCALARS = ("epoch", "collapse/collapsed")


#: The final metrics: HParams' metric columns, in this order (the first five show by default).
METRICS: tuple[tuple[str, str, str], ...] = (
    (
        "probes/linear_test",
        "linear probe acc (test)",
        "Logistic regression on standardised frozen backbone features: fit on the labeled split, "
        "accuracy on the test split, trained encoder (summary.json probe_acc).",
    ),
    (
        "probes/knn_test",
        "kNN acc (test)",
        "Weighted kNN on frozen backbone features (cosine, k and temperature in summary.json protocol): "
        "accuracy on the test split, trained encoder (knn_acc).",
    ),
    *(
        (
            f"MI/val/{name}",
            f"MI {name} (nats, held-out)",
            f"The {name} estimate of I(A; B) in nats on the training critic's scores, held-out (val) pairs, "
            "last epoch (summary.json mi).",
        )
        for name in MI_IN_NATS
    ),
    *(
        (
            f"MI/probe/{name}",
            f"MI probe {name} (nats, held-out)",
            f"The {name} estimate of I(A; B) in nats of the MI probe: a critic trained afresh on frozen embeddings "
            "of train pairs, scored on held-out (val) pairs, at the end (summary.json mi_probe).",
        )
        for name in MI_IN_NATS
    ),
    (
        "collapse/collapsed",
        "collapsed (1 = yes)",
        "1 when the held-out embeddings of a branch the critic sees collapsed: std of the L2-normalised "
        "embeddings under eval.collapse_std_fraction / sqrt(D), or effective rank under eval.collapse_min_rank.",
    ),
    ("probes/linear_test_untrained", "linear probe acc, untrained", "The same probe on the untrained encoder."),
    ("probes/knn_test_untrained", "kNN acc, untrained", "The same kNN on the untrained encoder."),
    (
        "collapse/effective_rank",
        "effective rank (held-out)",
        "RankMe of the held-out embeddings the critic sees, the lower of the two branches, last epoch.",
    ),
    (
        "collapse/embedding_std",
        "embedding std (held-out)",
        "Mean per-dimension std of the L2-normalised held-out embeddings, the lower branch, last epoch; "
        "about 1/sqrt(D) when spread out, 0 when collapsed.",
    ),
)

#: Custom Scalars: every held-out MI estimator on one chart, the collapse diagnostics on another.
LAYOUT = {
    "held-out MI (nats)": {
        "every estimator, every run": ["Multiline", [r"^MI/val/"]],
        "MI probe (a fresh critic), every run": ["Multiline", [r"^MI/probe/"]],
    },
    "collapse (held-out)": {
        "effective rank": ["Multiline", [r"^collapse/effective_rank$"]],
        "embedding std": ["Multiline", [r"^collapse/embedding_std$"]],
    },
}


# ----------------------------------------------------------------------------------------- run names
def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """{key: value} of ``key=value`` overrides, without Hydra's own and the +/~ prefixes."""
    pairs = (o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    return {k: v for k, v in pairs if not k.startswith("hydra")}


def short_name(values: Mapping[str, str]) -> str:
    """A run's name in legends: its values of the swept keys, in the sweep's order (``jmi,cos_dv``).
    A value that is a number, a boolean, none, or also a value of another key shows its key too
    (``lr=0.1``, ``predictor=none``)."""
    seen: dict[str, int] = {}
    for v in values.values():
        seen[v] = seen.get(v, 0) + 1
    parts = []
    for key, value in values.items():
        plain = value.replace("_", "").replace("-", "").isalnum() and not value[:1].isdigit()
        if plain and seen[value] == 1 and value.lower() not in ("true", "false", "none", "null"):
            parts.append(value)
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}={value}")
    return ",".join(parts).replace("/", "-") or "default"


@dataclass
class Place:
    """Where one run's events go, and what leads its HParams columns."""

    logdir: Path  # what `tensorboard --logdir` is pointed at
    name: str  # the run's folder in it, its name in legends
    leading: dict[str, str] = field(default_factory=dict)  # swept keys (or a single run's overrides): values
    in_sweep: bool = False  # a sweep's experiment is written once, by the sweep; a single run writes its own
    overrides: list[str] = field(default_factory=list)  # the run's command-line overrides

    @property
    def run_dir(self) -> Path:
        return self.logdir / self.name


def single_run_place(run_dir: Path, overrides: list[str]) -> Place:
    return Place(Path(run_dir) / FOLDER, run_name(overrides), parse_overrides(overrides), overrides=list(overrides))


def sweep_place(sweep_dir: Path, run_dir: Path, overrides: list[str]) -> Place:
    """A multirun job's place: named by its values of the keys the sweep varies (read from the file
    ``TensorBoardSweep`` writes when the multirun starts); without that file, by its run folder."""
    logdir = Path(sweep_dir) / FOLDER
    mine = parse_overrides(overrides)
    try:
        swept = json.loads((logdir / SWEEP_FILE).read_text())["swept"]
    except (OSError, ValueError, KeyError):
        return Place(logdir, Path(run_dir).name, mine, in_sweep=True, overrides=list(overrides))
    leading = {k: mine[k] for k in swept if k in mine}
    name = short_name(leading) if leading else Path(run_dir).name
    return Place(logdir, name, leading, in_sweep=True, overrides=list(overrides))


def swept_keys(task_overrides: Iterable[str], sweeper_params: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The keys a multirun varies and their values, from hydra.sweeper.params and its command line; as in
    Hydra's sweeper, the command line wins (``estimator=cos_dv`` narrows a swept estimator to one). A
    glob sweep lists its options with the config loader of the Hydra that runs (none outside one)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(task_overrides)
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    swept: dict[str, list[str]] = {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(given):
        key = override.get_key_element().lstrip("+~")
        if override.is_sweep_override():
            swept[key] = list(override.sweep_string_iterator())
        else:
            swept.pop(key, None)
    return swept


# ----------------------------------------------------------------------------------------- HParams records
def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as HParams values: dotted keys; bool, number or string."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(value, f"{name}.")
            else:
                flat[name] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)

    walk(config, "")
    return flat


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])


def _value(v: Any) -> Any:
    from google.protobuf.struct_pb2 import Value

    if isinstance(v, bool):
        return Value(bool_value=v)
    if isinstance(v, (int, float)):
        return Value(number_value=float(v))
    return Value(string_value=str(v))


def session_start(hparams: Mapping[str, Any], start_time: float | None = None) -> Summary:
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time or time.time())
    for key, value in hparams.items():
        info.hparams[key].CopyFrom(_value(value))
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end(ok: bool) -> Summary:
    info = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_SUCCESS if ok else api_pb2.STATUS_FAILURE, end_time_secs=time.time()
    )
    return _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _hparam_info(name: str, values: list[Any], leading: bool) -> api_pb2.HParamInfo:
    """One column: its type and discrete values; ``differs`` marks the leading columns (TensorBoard
    sorts those first, then by name, and shows the first five)."""
    info = api_pb2.HParamInfo(name=name, differs=leading)
    distinct = sorted(set(values), key=str)
    if all(isinstance(v, bool) for v in distinct):
        info.type = api_pb2.DATA_TYPE_BOOL
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        distinct = sorted(distinct)
    elif all(isinstance(v, str) for v in distinct):
        info.type = api_pb2.DATA_TYPE_STRING
    else:  # mixed types across runs: no type and no domain, so no filter hides a run
        return info
    info.domain_discrete.extend(float(v) if info.type == api_pb2.DATA_TYPE_FLOAT64 else v for v in distinct)
    return info


def experiment(runs: list[dict[str, Any]], leading: Mapping[str, list[str]]) -> Summary:
    """The HParams experiment: ``leading`` keys first (with their values), then every key of every run
    (``runs``: each run's session hparams), and the final metrics."""
    values: dict[str, list[Any]] = {k: [typed(str(x)) for x in v] for k, v in leading.items()}
    for hparams in runs:
        for key, value in hparams.items():
            values.setdefault(key, []).append(value)
    infos = [_hparam_info(k, v, k in leading) for k, v in values.items()]
    metric_infos = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name, description=description)
        for tag, name, description in METRICS
    ]
    info = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=metric_infos,
        description="ssrl: one row per run; metrics are final values (MI and collapse on the held-out val "
        "split, probes on the test split).",
        time_created_secs=time.time(),
    )
    return _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=info))


def typed(value: str) -> Any:
    """An override's value as YAML reads it: '0.1' -> 0.1, 'true' -> True, 'jmi' -> 'jmi'."""
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (bool, int, float, str)) else value


def session_hparams(leading: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's HParams values: its values of the leading keys, then its flattened config (whose typed
    value wins where a leading key is a config key, like optim.lr)."""
    return {**{k: typed(v) for k, v in leading.items()}, **flat_config(config)}


def single_run_leading(place: Place, hparams: Mapping[str, Any]) -> dict[str, list[Any]]:
    leading = {k: [v] for k, v in place.leading.items()}
    for key in AXES:
        if key in hparams and len(leading) < 5 and key.split(".")[0] not in leading:
            leading[key] = [hparams[key]]
    return leading


def write_events(logdir: Path, summaries: Iterable[Summary], suffix: str = "") -> None:
    """One event file of ``summaries`` in ``logdir``."""
    from torch.utils.tensorboard.writer import FileWriter

    writer = FileWriter(str(logdir), filename_suffix=suffix)
    for s in summaries:
        writer.add_summary(s)
    writer.close()


def write_sweep_experiment(sweep_dir: Path, swept: Mapping[str, list[str]], runs: list[dict[str, Any]]) -> Path:
    """The sweep's one experiment, and the swept keys for the jobs (``SWEEP_FILE``), in
    ``<sweep>/tensorboard``. The experiment is written into every run's folder (replacing an earlier
    one): TensorBoard reads it from whichever run it finds first, and a file at the top of the log
    folder would show up as an empty run named ".". The jobs' folders are named as ``sweep_place``
    names them, from the product of the swept values."""
    import itertools

    logdir = Path(sweep_dir) / FOLDER
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / SWEEP_FILE).write_text(json.dumps({"swept": swept}, indent=1))
    record = experiment(runs, swept)
    for values in itertools.product(*swept.values()):
        folder = logdir / short_name(dict(zip(swept, values, strict=True)))
        folder.mkdir(exist_ok=True)
        for old in folder.glob(f"events.out.tfevents.*{SWEEP_EVENTS}"):
            old.unlink()
        write_events(folder, [record], SWEEP_EVENTS)
    return logdir


def sweep_runs(sweep_dir: Path, swept: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Each run's session hparams, from the summary.json files under the sweep."""
    from ssrl.run.summary import read_summary

    runs = []
    for path in sorted(Path(sweep_dir).rglob("summary.json")):
        summary = read_summary(path.parent) or {}
        if summary.get("config"):
            mine = parse_overrides(summary.get("overrides") or [])
            ran = {"ran": summary["ran"]} if summary.get("ran") else {}  # as the run's loggers got it
            runs.append(session_hparams({k: mine[k] for k in swept if k in mine}, {**summary["config"], **ran}))
    return runs


# ----------------------------------------------------------------------------------------- during a run
def _code(text: str) -> str:
    """Markdown code block (the Text tab renders markdown)."""
    return "\n".join("    " + line for line in text.splitlines())


def in_config(node: Mapping[str, Any]) -> bool:
    """Whether a logger config (``cfg.logger``) has ssrl's TensorBoard logger."""
    target = f"{__name__}.GridTensorBoardLogger"
    return any((node.get(key) or {}).get("_target_") == target for key in logger_keys(node))


class GridTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger writing to ``place``: the config as an HParams session and as text
    (``log_hyperparams``), ``collapse/collapsed`` per epoch as text, the final results, summary and the
    end of the session (``log_summary``). Metric names arrive as ssrl.run.loggers gives them."""

    def __init__(self, place: Place) -> None:
        super().__init__(save_dir=str(place.logdir), name="", version=place.name, default_hp_metric=False)
        self.place = place

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if "collapse/collapsed" in metrics:
            std, rank = metrics.get("collapse/embedding_std"), metrics.get("collapse/effective_rank")
            verdict = "**collapsed**" if float(metrics["collapse/collapsed"]) else "not collapsed"
            detail = "" if std is None else f": embedding std {float(std):.4f}, effective rank {float(rank):.2f}"
            self.experiment.add_text("collapse/collapsed", f"step {step}: {verdict}{detail}", step)
        scalars = {k: v for k, v in metrics.items() if k not in NOT_SCALARS}
        if scalars:
            super().log_metrics(scalars, step)

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        """At the start of training: this run's HParams session (and, for a single run, its experiment),
        the Custom Scalars layout, and the resolved config ``params`` as text."""
        import yaml

        hparams = session_hparams(self.place.leading, params)
        records = [session_start(hparams)]
        if not self.place.in_sweep:
            records.insert(0, experiment([hparams], single_run_leading(self.place, hparams)))
        writer = self.experiment
        for record in records:
            writer.file_writer.add_summary(record)
        writer.add_custom_scalars(LAYOUT)
        overrides = " ".join(self.place.overrides) or "(none)"
        text = f"overrides: {overrides}\n\n" + _code(yaml.safe_dump(dict(params), sort_keys=False))
        writer.add_text("config", text, 0)
        writer.flush()

    @rank_zero_only
    def log_summary(self, summary: Mapping[str, Any], step: int) -> None:
        """The final results as single points (at the last step; the untrained baselines at step 0), the
        summary as text, and the end of the HParams session."""
        writer = self.experiment
        untrained, trained = final_metrics(summary)
        for values, at in ((untrained, 0), (trained, step)):
            for tag, value in values.items():
                writer.add_scalar(tag, value, at)
        brief = {k: v for k, v in summary.items() if k not in ("history", "config", "protocol")}
        writer.add_text("summary", _code(json.dumps(brief, indent=1, default=str)), step)
        writer.file_writer.add_summary(session_end(summary.get("status") == "completed"))
        writer.flush()


def learning_rates_callback() -> Any:
    """Logs every parameter group's learning rate as ``lr/<what it drives>``: encoder (with the critic,
    and JMI's second encoder), predictor, probe, target_m_step (SDMI's M-step optimizer)."""
    import pytorch_lightning as pl

    def drives(module: Any, index: int, group: dict) -> str:
        params = {id(p) for p in group["params"]}
        for name in ("probe", "predictor"):
            part = getattr(module, name, None)
            if part is not None and params and params <= {id(p) for p in part.parameters()}:
                return name
        return "target_m_step" if index > 0 else "encoder"

    class LearningRates(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if not trainer.loggers or not trainer._logger_connector.should_update_logs:
                return
            rates = {
                f"lr/{drives(pl_module, i, group)}": group["lr"]
                for i, optimizer in enumerate(trainer.optimizers)
                for group in optimizer.param_groups
            }
            for logger in trainer.loggers:
                logger.log_metrics(rates, step=trainer.fit_loop.epoch_loop._batches_that_stepped)

    return LearningRates()


def export_projector(
    logger: Any, model: Any, loaders: Mapping[str, Iterable], cfg_eval: Any, step: int, bank: tuple
) -> None:
    """TensorBoard's embedding projector on the held-out (val) images: ``val/embedding``, what the critic
    sees (branch A; it sorts first, so the projector opens on it), and ``val/features``, the backbone's.
    Metadata: label, the kNN prediction from the backbone features against ``bank`` (the labeled split's
    (features, labels), already extracted), correct (1/0); image thumbnails."""
    import torch

    from ssrl.evaluation.probes import knn_predict

    limit = 2000
    model.eval()
    with torch.no_grad():
        embeddings, features, labels, images = [], [], [], []
        for x, y in loaders["val"]:
            f, a = model.branch_a(model._layout(model.views.clean(x.to(model.device))))  # the run's layout
            embeddings.append(a.float().cpu())
            features.append(f.float().cpu())
            labels.append(torch.as_tensor(y).cpu())
            images.append(x.cpu())
            if sum(len(e) for e in embeddings) >= limit:
                break
    feats, label = torch.cat(features)[:limit], torch.cat(labels)[:limit]
    predicted = knn_predict((bank[0].cpu(), bank[1].cpu()), feats, cfg_eval.knn_k, cfg_eval.knn_temperature)
    rows = [[int(y), int(p), int(y == p)] for y, p in zip(label.tolist(), predicted.tolist(), strict=True)]
    thumbnails = torch.cat(images)[:limit].float() / 255
    for tag, values in (("val/embedding", torch.cat(embeddings)[:limit]), ("val/features", feats)):
        logger.experiment.add_embedding(
            values,
            metadata=rows,
            metadata_header=["label", "knn_prediction", "correct"],
            label_img=thumbnails,
            global_step=step,
            tag=tag,
        )


def copy_same_run(place: Place, source_dir: Path, source_overrides: list[str], config: Mapping[str, Any]) -> None:
    """A sweep job that is the same run as a completed sibling (ssrl.run.same_run) is not trained: it
    gets the sibling's curves, results and projector under its own name, with its own HParams session
    and config text, so that every run of the grid shows in TensorBoard."""
    import shutil

    import yaml
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from torch.utils.tensorboard.summary import text
    from torch.utils.tensorboard.writer import FileWriter

    source = sweep_place(place.logdir.parent, Path(source_dir), source_overrides).run_dir
    place.run_dir.mkdir(parents=True, exist_ok=True)
    writer = FileWriter(str(place.run_dir), filename_suffix=".same-run")
    writer.add_summary(session_start(session_hparams(place.leading, config)))
    note = f"the same run as {source.name} (ssrl/run/same_run.py): its curves and results, not trained again\n\n"
    writer.add_summary(text("config", note + _code(yaml.safe_dump(dict(config), sort_keys=False))), 0)
    for path in sorted(source.glob("events.out.tfevents.*")):
        if path.name.endswith(SWEEP_EVENTS):
            continue
        for event in EventFileLoader(str(path)).Load():
            if not event.HasField("summary"):
                continue
            kept = [v for v in event.summary.value if not v.tag.startswith(("_hparams_/", "config/"))]
            if kept:
                del event.summary.value[:]
                event.summary.value.extend(kept)
                writer.add_event(event, step=event.step, walltime=event.wall_time)
    writer.add_summary(session_end(True))
    writer.close()
    for item in source.iterdir():  # the projector: its config and its step folders
        if item.name == "projector_config.pbtxt":
            shutil.copy2(item, place.run_dir / item.name)
        elif item.is_dir():
            shutil.copytree(item, place.run_dir / item.name, dirs_exist_ok=True)
