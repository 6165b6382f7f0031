"""ssrl-eval on a finished run, the embedding projector, and ssrl-report on a sweep folder."""

from __future__ import annotations

import csv
import json

import pytest

from ssrl import evaluate_run as ssrl_eval
from ssrl.report import write_report
from ssrl.run.job import train
from ssrl.run.summary import write_summary


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from tests.conftest import compose_config

    folder = tmp_path_factory.mktemp("run")
    summary = train(compose_config("trainer.max_epochs=2"), folder, ["trainer.max_epochs=2"])
    return folder, summary


def test_eval_reproduces_the_summary(finished_run, capsys):
    folder, summary = finished_run
    ssrl_eval.main([str(folder), "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["probe_acc"] == pytest.approx(summary["probe_acc"], abs=1e-9)
    assert result["test"]["knn_acc"] == pytest.approx(summary["knn_acc"], abs=1e-9)
    assert result["val"]["probe_acc"] == pytest.approx(summary["val"]["probe_acc"], abs=1e-9)
    assert result["knn"] == {"k": 20, "temperature": 0.07}


def test_eval_names_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ssrl_eval.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no checkpoint there" in capsys.readouterr().err


def test_an_older_checkpoint_loads_with_todays_defaults_said(finished_run, tmp_path, caplog):
    """Issue 25, case 12: a checkpoint whose config predates backbone.projector_layers and
    projector_out_bn (a ConfigAttributeError before) rebuilds its model with today's defaults for them,
    every weight loaded (strictly), and a warning names both."""
    import torch

    checkpoint = torch.load(finished_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint = {k: checkpoint[k] for k in ("ssrl", "state_dict")}  # what ssrl-eval reads, no optimizer state
    for field in ("projector_layers", "projector_out_bn"):
        del checkpoint["ssrl"]["config"]["backbone"][field]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with caplog.at_level("WARNING", logger="ssrl"):
        model, _, _ = ssrl_eval.load_checkpoint(tmp_path / "old.ckpt")
    assert (model.cfg.backbone.projector_layers, model.cfg.backbone.projector_out_bn) == (2, False)
    assert [r.getMessage() for r in caplog.records if r.name == "ssrl"] == [
        f"ssrl: {tmp_path / 'old.ckpt'} was trained before ssrl had backbone.projector_layers, "
        "backbone.projector_out_bn; read with today's defaults: backbone.projector_layers=2, "
        "backbone.projector_out_bn=False"
    ]


def test_a_truncated_checkpoint_is_one_line(finished_run, tmp_path, monkeypatch, capsys):
    """Issue 25, case 12: last.ckpt cut to 1 MB: ssrl-eval and a resuming ssrl-train each say so in one
    line, with resume=false as the way out (a ~30-line torch.load traceback before)."""
    import sys

    from ssrl import train as ssrl_train
    from tests.conftest import TINY

    (tmp_path / "R" / "checkpoints").mkdir(parents=True)
    whole = (finished_run[0] / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "R" / "checkpoints" / "last.ckpt").write_bytes(whole[: 2**20])
    line = (
        f"{tmp_path / 'R' / 'checkpoints' / 'last.ckpt'}: damaged, not a whole checkpoint (RuntimeError: "
        "PytorchStreamReader failed reading zip archive: failed finding central directory); to train its run "
        "folder again from scratch, rerun ssrl-train with resume=false"
    )
    with pytest.raises(SystemExit) as exit_info:
        ssrl_eval.main([str(tmp_path / "R")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"ssrl-eval: error: {line}"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, f"hydra.run.dir={tmp_path / 'R'}"])
    with pytest.raises(SystemExit) as exit_info:
        ssrl_train.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"ssrl-train: error: {line}"]


def test_eval_reads_moved_data_from_data_root(finished_run, tmp_path, monkeypatch, capsys):
    """Issue 25, case 13: a run whose data.root is relative ("images", four far-apart colours), evaluated
    from another directory: one line naming data.root and --data-root; with --data-root pointing at the
    images, the evaluation runs on them (every test image right)."""
    import torch
    from omegaconf import OmegaConf

    from tests.conftest import compose_config
    from tests.folders import FOLDER_ARGS, image_folder

    classes = ("a", "b", "c", "d")  # as many as the synthetic run's: its online probe's weights load
    images = image_folder(tmp_path / "trained_here" / "images", train=classes, val=classes, per_class=8)
    checkpoint = torch.load(finished_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint = {k: checkpoint[k] for k in ("ssrl", "state_dict")}  # what ssrl-eval reads, no optimizer state
    data = compose_config(*FOLDER_ARGS, "data.root=images", tiny=False).data
    checkpoint["ssrl"]["config"]["data"] = OmegaConf.to_container(data, resolve=True, enum_to_str=True)
    torch.save(checkpoint, tmp_path / "run.ckpt")
    monkeypatch.chdir(tmp_path)  # not trained_here
    with pytest.raises(SystemExit) as exit_info:
        ssrl_eval.main([str(tmp_path / "run.ckpt"), "--device", "cpu"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("ssrl-eval: error: data.root") and "images" in line and line.endswith("--data-root)")
    ssrl_eval.main([str(tmp_path / "run.ckpt"), "--device", "cpu", "--data-root", str(images)])
    result = json.loads(capsys.readouterr().out)
    assert (result["test"]["probe_acc"], result["test"]["knn_acc"]) == (1.0, 1.0)


def test_projector_has_embeddings_labels_and_thumbnails(finished_run):
    folder, _ = finished_run
    logdir = folder / "tensorboard" / "trainer.max_epochs=2"
    projector = (logdir / "projector_config.pbtxt").read_text()
    # the critic's embedding sorts first, so the projector opens on it
    assert projector.index('"val/embedding') < projector.index('"val/features')
    assert "metadata_path" in projector and "sprite" in projector
    (metadata,) = logdir.glob("*/val%2fembedding/metadata.tsv")
    rows = [line.split("\t") for line in metadata.read_text().splitlines()]
    assert rows[0] == ["label", "knn_prediction", "correct"]
    assert all(row[2] == str(int(row[0] == row[1])) for row in rows[1:])


def test_report_lists_every_run(finished_run, tmp_path):
    folder, summary = finished_run
    sweep = tmp_path / "sweep"
    for name, data in {
        "estimator=cos_dv": {**summary, "overrides": ["estimator=cos_dv"]},
        "estimator=jsd": {
            **summary,
            "overrides": ["estimator=jsd"],
            "config": {**summary["config"], "estimator": {"name": "jsd"}},
        },
        "estimator=nwj": {"status": "failed", "error": "ValueError: loss is NaN", "overrides": ["estimator=nwj"]},
        "estimator=infonce": {
            "status": "running",
            "overrides": ["estimator=infonce"],
            "history": summary["history"][:1],
        },
    }.items():
        write_summary(sweep / name, data)
    (sweep / "estimator=bilinear" / ".hydra").mkdir(parents=True)
    (sweep / "estimator=bilinear" / ".hydra" / "overrides.yaml").write_text("- estimator=bilinear\n")

    runs = write_report(sweep)
    assert len(runs) == 5
    table = list(csv.DictReader((sweep / "results.csv").read_text().splitlines()))
    by_estimator = {row["estimator"]: row for row in table}
    assert by_estimator["nwj"]["status"] == "failed" and "loss is NaN" in by_estimator["nwj"]["error"]
    assert by_estimator["infonce"]["status"].startswith("running or died")
    assert by_estimator["bilinear"]["status"] == "not started"
    assert by_estimator["cos_dv"]["status"] == "completed" and by_estimator["cos_dv"]["probe_acc"]
    assert "trainer.max_epochs" not in table[0]  # only the overrides that vary are columns
    markdown = (sweep / "results.md").read_text()
    assert "5 runs in 5 cells" in markdown and "2 completed, 1 failed" in markdown
    assert (sweep / "mi_curves.png").stat().st_size > 0 and (sweep / "collapse.png").stat().st_size > 0
