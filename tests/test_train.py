"""Whole runs of both paradigms on tiny data: summary.json, TensorBoard scalars and hparams."""

from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssrl.run.job import train
from tests.conftest import two_batch_trainer

REQUIRED = {
    "status",
    "probe_acc",
    "probe_acc_init",
    "knn_acc",
    "effective_rank",
    "embedding_std",
    "mi",
    "collapsed",
    "epochs",
    "steps",
    "wall_s",
    "overrides",
}


@pytest.mark.parametrize("paradigm", ["jmi", "sdmi"])
def test_run_writes_summary_and_tensorboard(config, tmp_path, paradigm):
    overrides = [f"paradigm={paradigm}", "trainer.max_epochs=2"]
    summary = train(config(*overrides), tmp_path, overrides)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["status"] == "completed" and on_disk.keys() >= REQUIRED
    assert on_disk["steps"] == 4 and on_disk["epochs"] == 2 and on_disk["overrides"] == overrides
    assert 0 <= on_disk["probe_acc"] <= 1 and 0 <= on_disk["probe_acc_init"] <= 1
    assert set(on_disk["mi"]) == {"dv", "infonce"}  # MI in nats only
    assert set(on_disk["bound"]) == {"cos_dv", "infonce", "jsd", "nwj"}  # each objective's value, own name
    assert 0 <= on_disk["val"]["probe_acc"] <= 1 and 0 <= on_disk["val"]["probe_acc_init"] <= 1
    assert [h["epoch"] for h in on_disk["history"]] == [0, 1, 2]
    assert summary["probe_acc"] == on_disk["probe_acc"]
    for kind in ("probe", "knn"):  # each test image's correctness, whose share of 1s is the accuracy
        bits = on_disk["per_image"]["test"][f"{kind}_correct"]
        assert set(bits) <= {"0", "1"} and bits.count("1") / len(bits) == pytest.approx(on_disk[f"{kind}_acc"])
        inits = on_disk["baseline"]["test"][f"{kind}_acc"]  # the pinned baseline, and the gain over its mean
        assert len(inits) == on_disk["baseline"]["inits"] == 2
        assert on_disk["gain"][kind]["mean"] == pytest.approx(on_disk[f"{kind}_acc"] - sum(inits) / 2)

    logdir = tmp_path / "tensorboard" / f"paradigm={paradigm},trainer.max_epochs=2"  # named by its overrides
    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    expected = (
        {
            "training/loss",
            "training/joint_J",
            "training/marginal_M",
            "training/lr/encoder",
            "training/lr/probe",
            "probes/online_linear_val",
            "collapse/effective_rank",
            "collapse/embedding_std",
        }
        | {f"MI/train/{n}" for n in summary["mi"]}
        | {f"MI/val/{n}" for n in summary["mi"]}
        | {"training/bound/cos_dv"}
        | {f"training/bound_val/{n}" for n in on_disk["bound"]}
        | {"probes/linear_test", "probes/linear_test_untrained", "probes/knn_test", "collapse/collapsed"}
    )
    assert expected <= scalars, expected - scalars
    assert not any(tag.startswith(("lr-", "hparam", "val/", "train/")) or tag == "epoch" for tag in scalars)
    if paradigm == "sdmi":  # the gradient target's M-step optimizer
        assert "training/lr/target_m_step" in scalars
    # final results at the last step, the untrained baseline at step 0; collapsed as one point
    last = events.Scalars("MI/val/dv")[-1].step
    assert [e.step for e in events.Scalars("probes/linear_test")] == [last] and last == 3
    assert [e.step for e in events.Scalars("probes/linear_test_untrained")] == [0]
    assert [e.value for e in events.Scalars("collapse/collapsed")] == [float(on_disk["collapsed"])]
    assert {"config", "summary", "collapse/collapsed"} <= {
        t.split("/text_summary")[0] for t in events.Tags()["tensors"]
    }
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(
        events.summary_metadata
    )


def test_completed_run_is_not_redone(config, tmp_path):
    cfg = config()
    first = train(cfg, tmp_path, [])
    mtime = (tmp_path / "summary.json").stat().st_mtime
    again = train(cfg, tmp_path, [])
    assert again["probe_acc"] == first["probe_acc"]
    assert (tmp_path / "summary.json").stat().st_mtime == mtime


def test_csv_logger(config, tmp_path):
    train(config("logger=csv"), tmp_path, ["logger=csv"])
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "training/loss" in header and "MI/val/dv" in header  # the names every logger gets


@pytest.mark.parametrize("paradigm", ["jmi", "sdmi"])
def test_same_seed_same_summary(config, tmp_path, paradigm):
    cfg = config(f"paradigm={paradigm}", "trainer.max_epochs=2")
    first = train(cfg, tmp_path / "first", [])
    second = train(cfg, tmp_path / "second", [])
    # the same config, seed, machine and thread count: every number repeats; only time and place may differ
    differ = {"wall_s", "run_dir"}
    assert {k: v for k, v in first.items() if k not in differ} == {k: v for k, v in second.items() if k not in differ}
    assert first["probe_acc"] is not None and first["history"]


@pytest.mark.parametrize("policy", ["stop", "skip"])
@pytest.mark.parametrize("paradigm", ["jmi", "sdmi"])
def test_non_finite_loss_stops_or_skips(config, paradigm, policy):
    import torch

    from ssrl.data.module import SSLDataModule
    from ssrl.run.job import PARADIGMS

    cfg = config(f"paradigm={paradigm}", f"on_nonfinite_loss={policy}")
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[paradigm](cfg, data.num_classes)
    objective = model.objective.forward

    def poisoned(a, b):  # every loss is NaN
        step = objective(a, b)
        return type(step)(step.loss * float("nan"), step.terms, step.scores)

    model.objective.forward = poisoned
    before = [p.detach().clone() for p in model.online.parameters()]
    trainer = two_batch_trainer()
    if policy == "stop":
        with pytest.raises(
            FloatingPointError, match="the training loss is nan in epoch 0, batch 1 of the run: lower optim.lr"
        ):
            trainer.fit(model, data)
    else:
        trainer.fit(model, data)
        assert model.skipped_steps == 2
        assert all(torch.equal(p, q) for p, q in zip(before, model.online.parameters(), strict=True))
