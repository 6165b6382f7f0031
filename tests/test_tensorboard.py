"""TensorBoard for a grid: a 2x2 sweep read back through TensorBoard's data layer (the HParams plugin's
experiment and session groups), run names, tag layout."""

from __future__ import annotations

from omegaconf import OmegaConf

from ssrl.run import loggers
from ssrl.run import tensorboard as tb
from ssrl.run.summary import write_summary
from tests.tb_reader import read_hparams

SWEEP = ["paradigm=jmi,sdmi", "estimator=cos_dv,infonce"]
RAN = {"precision": "bf16-mixed", "device": "cpu", "threads": 1}  # what ran (ssrl.run.what_ran), abridged


def write_run(sweep, config, overrides, seed):
    """What a multirun job writes to TensorBoard, without the training: its session, a few epochs of
    scalars under their Lightning names, the final results; and its summary.json."""
    run_dir = sweep / ",".join(overrides)
    place = tb.sweep_place(sweep, run_dir, overrides)
    logger = loggers.build_loggers(config.logger, run_dir, place.name, place)  # the default: ssrl's TensorBoard
    container = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
    loggers.start(logger, {**container, "ran": RAN})
    (logger,) = logger
    for step in range(3):
        logger.log_metrics({"train/loss": -step, "train/mi/dv": step, "lr/encoder": 0.05, "epoch": 0}, step)
        logger.log_metrics(
            {"val/mi/dv": step + seed, "val/mi/infonce": step, "val/effective_rank": 10.0, "val/collapsed": 0.0}, step
        )
    summary = {
        "status": "completed",
        "probe_acc": 0.9 + seed / 100,
        "probe_acc_init": 0.8,
        "knn_acc": 0.85,
        "knn_acc_init": 0.7,
        "collapsed": False,
        "overrides": overrides,
        "config": container,
        "ran": RAN,
    }
    loggers.log_final([logger], summary, 2)
    loggers.close([logger], ok=True)
    write_summary(run_dir, summary)


def test_the_command_line_narrows_an_experiment_files_sweep_as_hydra_does():
    params = {"estimator": "cos_dv,infonce", "marginal.weight": "0,0.5,1", "seed": "0,1,2"}
    swept = tb.swept_keys(["+experiment=lambda_sweep", "estimator=cos_dv", "seed=0,1"], params)
    assert swept == {"marginal.weight": ["0", "0.5", "1"], "seed": ["0", "1"]}


def test_a_2x2_sweep_reads_back_as_one_experiment(config, tmp_path):
    swept = tb.swept_keys(SWEEP + ["data=synthetic"], {})
    assert swept == {"paradigm": ["jmi", "sdmi"], "estimator": ["cos_dv", "infonce"]}
    tb.write_sweep_experiment(tmp_path, swept, [])  # as the multirun starts
    configs = {}
    for i, (paradigm, estimator) in enumerate((p, e) for p in swept["paradigm"] for e in swept["estimator"]):
        overrides = [f"paradigm={paradigm}", f"estimator={estimator}", "data=synthetic"]
        configs[paradigm, estimator] = config(*overrides)
        write_run(tmp_path, configs[paradigm, estimator], overrides, i)
    tb.write_sweep_experiment(tmp_path, swept, tb.sweep_runs(tmp_path, swept))  # as it ends

    assert not list((tmp_path / "tensorboard").glob("events.*"))  # no empty run "." at the top
    experiment, groups = read_hparams(tmp_path / "tensorboard")
    infos = {h.name: h for h in experiment.hparam_infos}
    # the swept keys first (TensorBoard shows the first five columns), with their values as filters
    assert [h.name for h in experiment.hparam_infos[:2]] == ["estimator", "paradigm"]
    assert [h.differs for h in experiment.hparam_infos] == [True, True] + [False] * (len(infos) - 2)
    assert list(infos["paradigm"].domain_discrete) == ["jmi", "sdmi"]
    assert list(infos["estimator"].domain_discrete) == ["cos_dv", "infonce"]
    # every key of every run: SDMI's fields, InfoNCE's symmetric, the config of all four
    for cfg in configs.values():
        assert set(tb.flat_config(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))) <= set(infos)
    assert {"paradigm.e_steps", "paradigm.target_update", "estimator.symmetric"} <= set(infos)
    assert list(infos["paradigm.name"].domain_discrete) == ["jmi", "sdmi"]
    assert list(infos["ran.precision"].domain_discrete) == ["bf16-mixed"]  # what ran, a column of its own
    # the named final metrics, and no training curves
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics == [tag for tag, _, _ in tb.METRICS]
    probes = {"probes/linear_test", "probes/linear_test_untrained", "probes/knn_test", "probes/knn_test_untrained"}
    assert probes <= set(metrics)
    assert {"MI/val/dv", "MI/val/infonce", "collapse/effective_rank", "collapse/embedding_std"} <= set(metrics)
    assert "collapse/collapsed" in metrics
    assert not any(m.startswith(("training/", "MI/train/")) for m in metrics)
    assert all(m.display_name and m.description for m in experiment.metric_infos)
    # one session group per run, named by its swept values, with its own values and final metrics
    by_name = {g.name: g for g in groups}
    assert set(by_name) == {"jmi,cos_dv", "jmi,infonce", "sdmi,cos_dv", "sdmi,infonce"}
    group = by_name["sdmi,infonce"]
    assert group.hparams["paradigm"].string_value == "sdmi" and group.hparams["paradigm.e_steps"].number_value == 1
    assert "paradigm.e_steps" not in by_name["jmi,cos_dv"].hparams
    values = {m.name.tag: (round(m.value, 6), m.training_step) for m in group.sessions[0].metric_values}
    assert values["probes/linear_test"] == (0.93, 2) and values["probes/linear_test_untrained"] == (0.8, 0)
    assert values["MI/val/dv"] == (5.0, 2) and values["collapse/collapsed"] == (0.0, 2)
    assert group.sessions[0].status == 1  # STATUS_SUCCESS


def test_a_single_run_gets_its_own_experiment(config, tmp_path):
    overrides = ["paradigm=sdmi"]
    place = tb.single_run_place(tmp_path, overrides)
    assert place.run_dir == tmp_path / "tensorboard" / "paradigm=sdmi"
    cfg = config(*overrides)
    loggers.start(
        loggers.build_loggers(cfg.logger, tmp_path, place.name, place),
        OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
    )
    experiment, groups = read_hparams(place.logdir)
    leading = [h.name for h in experiment.hparam_infos if h.differs]
    assert leading == ["data.name", "estimator.name", "marginal.name", "paradigm", "predictor.name"]
    assert [g.name for g in groups] == ["paradigm=sdmi"]


def test_run_names_are_the_swept_values():
    assert tb.short_name({"paradigm": "jmi", "estimator": "cos_dv"}) == "jmi,cos_dv"
    assert tb.short_name({"optim.lr": "0.1", "seed": "2"}) == "lr=0.1,seed=2"
    assert tb.short_name({"marginal": "none", "predictor": "mlp"}) == "marginal=none,mlp"
    assert tb.short_name({"+ablation": "jmi_exact", "estimator": "jsd"}) == "jmi_exact,jsd"


def test_tags_read_top_down():
    tag_for = loggers.metric_name
    assert tag_for("train/mi/dv") == "MI/train/dv" and tag_for("val/mi/infonce") == "MI/val/infonce"
    assert tag_for("val/effective_rank") == "collapse/effective_rank"
    assert tag_for("val/online_probe_acc") == "probes/online_linear_val"
    assert tag_for("train/bound/jsd") == "training/bound/jsd" and tag_for("lr/encoder") == "training/lr/encoder"
    assert {tag_for("epoch"), tag_for("val/collapsed")} == set(tb.NOT_SCALARS)  # text, or not drawn
    names = ("train/mi/dv", "val/embedding_std", "val/online_probe_acc", "train/loss")
    groups = [tag_for(n).split("/")[0] for n in names]
    assert groups == sorted(groups)  # Time Series orders groups by name: MI, collapse, probes, training


def test_a_job_that_reuses_a_sibling_run_shows_under_its_own_name(config, tmp_path):
    swept = {"estimator": ["cos_dv", "infonce"]}
    tb.write_sweep_experiment(tmp_path, swept, [])
    source = ["estimator=cos_dv", "marginal=barlow"]
    write_run(tmp_path, config(*source), source, 0)
    mine = ["estimator=infonce", "marginal=barlow"]
    place = tb.sweep_place(tmp_path, tmp_path / ",".join(mine), mine)
    cfg = OmegaConf.to_container(config(*mine), resolve=True, enum_to_str=True)
    tb.copy_same_run(place, tmp_path / ",".join(source), source, cfg)

    _, groups = read_hparams(tmp_path / "tensorboard")
    by_name = {g.name: g for g in groups}
    assert set(by_name) == {"cos_dv", "infonce"}
    assert by_name["infonce"].hparams["estimator.name"].string_value == "infonce"
    values = [{m.name.tag: m.value for m in by_name[n].sessions[0].metric_values} for n in ("cos_dv", "infonce")]
    assert values[0] == values[1] and "probes/linear_test" in values[0]
