"""The MI probe (ssrl.mi.probe, ssrl.run.mi_probe): it recovers the MI of correlated Gaussians at the
default job's sizes, reads 0 on a collapsed embedding and about 0 on independent views, scores the val
pairs it is given; during a run it measures at the epochs it is due, leaves the model as it was, and
lands in history, summary.json and TensorBoard."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssrl.data.module import SSLDataModule
from ssrl.data.views import seed_of
from ssrl.mi import gaussian
from ssrl.mi.probe import CRITICS, mi_probe
from ssrl.paradigms.sdmi import SDMI
from ssrl.run import mi_probe as run_probe
from ssrl.run.job import train
from tests.conftest import compose_config

#: The default job's sizes: styled digits' 1149 train and 288 val images, batches of 128, D = 128.
D, N, TRAIN, VAL = 128, 128, 1149, 288


def gaussian_pairs(mi: float, seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    g = torch.Generator().manual_seed(seed)
    rho = gaussian.rho_for(mi, D) if mi > 0 else 0.0
    return gaussian.sample(TRAIN, D, rho, g), gaussian.sample(VAL, D, rho, g)


@pytest.mark.parametrize("mi", [1.0, 4.0])
def test_the_probe_recovers_the_mi_of_correlated_gaussians(mi):
    """The stated tolerance (docs/method.md, "The MI probe"): DV within 0.5 nats of the truth up to 4
    nats; InfoNCE a lower bound under log N. Untrained (the critic's starting temperature), it reads
    2.1 at 4 nats."""
    train, val = gaussian_pairs(mi)
    result = mi_probe(train, val, N)
    assert abs(result["dv"] - mi) < 0.5, result
    assert result["infonce"] <= min(mi + 0.2, math.log(N)), result
    assert result["infonce"] > mi - (0.25 if mi < 2 else 1.0), result
    if mi > 2:  # near log N InfoNCE saturates and DV does not: the two are not swapped
        assert result["dv"] > result["infonce"] + 0.4, result


@pytest.mark.parametrize("critic", CRITICS)
def test_the_probe_reads_zero_on_a_constant_embedding(critic):
    """A collapsed encoder: one embedding for every input, so every score is the same and both
    estimates are exactly 0, whatever the critic learned."""
    g = torch.Generator().manual_seed(0)
    constant = torch.randn(1, D, generator=g)
    train, val = (constant.expand(TRAIN, D),) * 2, (constant.expand(VAL, D),) * 2
    result = mi_probe(train, val, N, critic)
    assert result == pytest.approx({"dv": 0.0, "infonce": 0.0}, abs=1e-5)


def test_the_probe_reads_about_zero_on_independent_views():
    train, val = gaussian_pairs(0.0)
    result = mi_probe(train, val, N)
    assert result == pytest.approx({"dv": 0.0, "infonce": 0.0}, abs=0.05)


def test_the_probe_scores_the_val_pairs_it_is_given():
    """Trained on pairs holding 4 nats, scored on independent val pairs: the critic's sharp scores of
    unrelated pairs make both estimates negative (scored on the train pairs they would read about 4)."""
    train, _ = gaussian_pairs(4.0)
    _, independent = gaussian_pairs(0.0, seed=1)
    result = mi_probe(train, independent, N)
    assert result["dv"] < -0.5 and result["infonce"] < -0.2, result


def test_the_probe_is_deterministic_and_refuses_bad_input():
    train, val = gaussian_pairs(2.0)
    assert mi_probe(train, val, N, seed=3) == mi_probe(train, val, N, seed=3)
    with pytest.raises(ValueError, match="probe critic must be one of cosine, projection"):
        mi_probe(train, val, N, "mlp")
    with pytest.raises(ValueError, match="val holds"):
        mi_probe(train, (val[0][:100], val[1][:100]), N)
    with pytest.raises(ValueError, match="one shape"):
        mi_probe(train, (val[0], val[1][:, :10]), N)


def test_probe_indices_are_a_fixed_sorted_subsample():
    assert run_probe.probe_indices(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    index = run_probe.probe_indices(100, 30, 0)
    assert len(index) == 30 and len(set(index.tolist())) == 30 and index.tolist() == sorted(index.tolist())
    assert torch.equal(index, run_probe.probe_indices(100, 30, 0))
    assert not torch.equal(index, run_probe.probe_indices(100, 30, 1))


def tiny_sdmi():
    """An SDMI model with a predictor (so branch A and branch B differ) and its data, in training mode."""
    cfg = compose_config("paradigm=sdmi", "predictor=mlp", "eval.mi_probe_max_images=64", "backbone.width=8")
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    torch.manual_seed(0)
    return SDMI(cfg, data.num_classes).train(), data, cfg


def test_view_pairs_are_two_views_through_each_branch():
    model, data, cfg = tiny_sdmi()
    images = data.splits.train.images[:16]
    with run_probe.frozen(model):
        a, b = run_probe.view_pair_embeddings(model, iter([images]), cfg.seed, 0)
        g = torch.Generator().manual_seed(seed_of(cfg.seed, run_probe.VIEW_KEY, 0, 0))
        xa, xb = model.views(images, g)
        torch.testing.assert_close(a, model.branch_a(xa)[1])
        torch.testing.assert_close(b, model.branch_b(xb))
        assert not torch.allclose(model.branch_a(xb)[1], b)  # the branches differ, so a swap would show


def test_a_measurement_leaves_the_model_as_it_was():
    """Eval mode inside (BatchNorm's running statistics untouched), every module's own mode restored
    after, no gradients; and the same fixed views give the same result twice."""
    model, data, cfg = tiny_sdmi()
    model.probe.eval()  # a submodule in its own mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {name: m.training for name, m in model.named_modules()}
    first = run_probe.measure(model, data.splits, cfg)
    assert {name: m.training for name, m in model.named_modules()} == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters())
    assert run_probe.measure(model, data.splits, cfg) == first
    assert set(first) == {"dv", "infonce"} and all(math.isfinite(v) for v in first.values())


def test_a_run_measures_before_training_every_k_epochs_and_at_the_end(tmp_path):
    overrides = ["trainer.max_epochs=3", "eval.mi_probe_every_n_epochs=2", "backbone.width=8"]
    summary = train(compose_config(*overrides), tmp_path, overrides)
    probed = [h["epoch"] for h in summary["history"] if "mi_probe" in h]
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2, 3] and probed == [0, 2, 3]
    assert summary["mi_probe_init"] == summary["history"][0]["mi_probe"]
    assert summary["mi_probe"] == summary["history"][-1]["mi_probe"] and set(summary["mi_probe"]) == {"dv", "infonce"}
    assert summary["mi_probe_s"] == pytest.approx(sum(h["mi_probe_s"] for h in summary["history"] if "mi_probe" in h))
    assert "trained afresh" in summary["protocol"]["mi_probe"]
    assert summary["mi_probe"] != summary["mi"]  # its own critic, not the run's

    (logdir,) = (tmp_path / "tensorboard").iterdir()
    events = EventAccumulator(str(logdir)).Reload()
    steps = [s.step for s in events.Scalars("MI/val/dv")]
    for name in ("dv", "infonce"):
        points = events.Scalars(f"MI/probe/{name}")
        assert [p.step for p in points] == [steps[0], steps[2], steps[3]]
        assert points[-1].value == pytest.approx(summary["mi_probe"][name])


def test_mi_probe_every_n_epochs_0_turns_it_off(tmp_path):
    summary = train(compose_config("eval.mi_probe_every_n_epochs=0", "backbone.width=8"), tmp_path, [])
    assert not any("mi_probe" in h for h in summary["history"])
    assert summary["mi_probe_init"] is None and "mi_probe" not in summary and summary["mi_probe_s"] == 0


def test_a_run_ended_by_max_steps_is_measured_at_its_end(tmp_path):
    """trainer=debug trains 2 batches per epoch: max_steps=4 ends the run after epoch 2 of 5."""
    overrides = ["trainer.max_epochs=5", "trainer.max_steps=4", "eval.mi_probe_every_n_epochs=10", "backbone.width=8"]
    summary = train(compose_config(*overrides), tmp_path, overrides)
    assert [h["epoch"] for h in summary["history"] if "mi_probe" in h] == [0, 2] and summary["steps"] == 4
