"""Any Lightning logger from the logger group: one run logging to TensorBoard, CSV, W&B (offline), MLflow
(a file store in the run folder) and a plain Lightning class named by _target_, each read back with its
own library's reader; a missing package or a wrong argument fails before any work; a run folder from
before _target_ (``logger: {name: tensorboard}``) still resumes."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssrl.errors import ConfigError
from ssrl.run.job import train
from ssrl.run.loggers import check_loggers
from ssrl.run.naming import run_name
from ssrl.run.resume import flatten
from tests.conftest import TINY

#: Keys a logger adds of its own: Lightning's epoch and step counters, W&B's bookkeeping.
OWN = {"epoch", "step", "_runtime", "_step", "_timestamp", "trainer/global_step"}


def wandb_records(folder) -> list[dict]:
    """The records of an offline W&B run, as W&B's own reader (`wandb leet inspect --json`) gives them."""
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def mlflow_run(store):
    """The one run of experiment "ssrl" in an MLflow file store, through MLflow's client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file:{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("ssrl").experiment_id])
    return client, run


def test_every_logger_gets_the_same_names_the_config_and_the_final_results(config, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline: the shipped default
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a file store in the run folder
    overrides = ["logger=[tensorboard,csv,wandb,mlflow]", "+logger.plain._target_=pytorch_lightning.loggers.CSVLogger"]
    summary = train(config(*overrides), tmp_path, overrides)
    resolved, name = {**summary["config"], "ran": summary["ran"]}, run_name(overrides)  # the config, what ran
    last = summary["steps"] - 1  # the step of the last batch's scalars (steps count from 0)

    # TensorBoard (ssrl's): scalars; per-epoch `collapsed` is text, its final value one point
    tb = EventAccumulator(str(next((tmp_path / "tensorboard").iterdir()))).Reload()
    names = {"TensorBoard": set(tb.Tags()["scalars"])}
    values = {"TensorBoard": {k: [(e.step, e.value) for e in tb.Scalars(k)] for k in names["TensorBoard"]}}

    # CSV: the shipped option, and Lightning's class added by _target_ (ssrl gave it save_dir and name)
    for logger, folder in (("CSV", tmp_path / "csv"), ("plain CSV", tmp_path / name / "version_0")):
        with (folder / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        names[logger] = set(rows[0]) - OWN
        values[logger] = {k: [(int(r["step"]), float(r[k])) for r in rows if r[k]] for k in names[logger]}
        assert yaml.safe_load((folder / "hparams.yaml").read_text()) == resolved

    # W&B: an offline run folder, read with W&B's own reader
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    records = wandb_records(offline)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    names["W&B"] = set().union(*history) - OWN
    values["W&B"] = {k: [(h["trainer/global_step"], h[k]) for h in history if k in h] for k in names["W&B"]}
    config_updates = {}
    for r in records:
        if r["type"] == "config":
            config_updates.update(r["config"]["update"])
    assert {k: config_updates[k] for k in resolved} == resolved
    assert next(r["run"] for r in records if r["type"] == "run")["display_name"] == name
    assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [0]  # finished, not left open

    # MLflow: the file store in the run folder, through MLflow's client
    client, run = mlflow_run(tmp_path / "mlruns")
    assert run.info.status == "FINISHED" and run.info.run_name == name
    names["MLflow"] = set(run.data.metrics) - OWN
    history = {k: client.get_metric_history(run.info.run_id, k) for k in names["MLflow"]}
    values["MLflow"] = {k: [(m.step, m.value) for m in v] for k, v in history.items()}
    # Lightning's MLflow logger leaves out empty lists (comparisons: [] of a run that declares none)
    expected = {k.replace(".", "/"): str(v) for k, v in flatten(resolved).items() if v != []}
    assert run.data.params == expected

    # the same names everywhere ("collapse/collapsed" in TensorBoard: its final point only)
    assert len({frozenset(n) for n in names.values()}) == 1, names
    assert {"MI/val/dv", "collapse/effective_rank", "training/loss", "probes/linear_test"} <= names["TensorBoard"]
    for logger, logged in values.items():
        assert (last, pytest.approx(summary["probe_acc"], rel=1e-6)) in logged["probes/linear_test"], logger
        assert (last, pytest.approx(summary["val"]["knn_acc"], rel=1e-6)) in logged["probes/knn_val"], logger
        assert logged["probes/linear_test_untrained"] == [(0, pytest.approx(summary["probe_acc_init"]))], logger
        assert (last, float(summary["collapsed"])) in logged["collapse/collapsed"], logger
        assert (last, pytest.approx(summary["mi"]["dv"], rel=1e-6)) in logged["MI/val/dv"], logger


def test_a_missing_package_fails_before_any_work_naming_the_extra(tmp_path, monkeypatch, capsys):
    from ssrl import train as entry

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, "logger=[tensorboard,mlflow]"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "ssrl-train: error: logger.mlflow (MLFlowLogger) needs the mlflow package, which is not installed: "
        "pip install 'ssrl[mlflow]'"
    )
    assert not list(tmp_path.iterdir())  # no run folder


def test_a_logger_argument_its_class_does_not_take_is_refused(config):
    with pytest.raises(ConfigError, match=r"^logger.csv: got an unexpected keyword argument 'versoin' \(CSVLogger"):
        check_loggers(config("logger=csv", "+logger.csv.versoin=2").logger)
    with pytest.raises(ConfigError, match=r"^logger.mine: needs _target_"):
        check_loggers(config("+logger.mine.save_dir=x").logger)


def test_a_run_from_before_target_loggers_still_resumes(config, tmp_path, caplog):
    """A run folder whose stored config says ``logger: {name: tensorboard}``: reported when completed,
    extended from its checkpoint when asked."""
    overrides = ["optim.schedule=constant"]
    train(config(*overrides), tmp_path, overrides)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["ssrl"]["config"]["logger"] = {"name": "tensorboard"}
    torch.save(state, checkpoint)
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary["config"]["logger"] = {"name": "tensorboard"}
    (tmp_path / "summary.json").write_text(json.dumps(summary))

    with caplog.at_level(logging.INFO, logger="ssrl"):
        again = train(config(*overrides), tmp_path, overrides)
    assert again["steps"] == 2 and "is already completed" in caplog.text
    assert f"tensorboard --logdir {tmp_path.resolve() / 'tensorboard'}" in caplog.text

    longer = [*overrides, "trainer.max_epochs=2"]
    extended = train(config(*longer), tmp_path, longer)
    assert extended["status"] == "completed" and extended["steps"] == 4 and extended["epochs"] == 2
