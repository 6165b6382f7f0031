"""Tests that fail when a mechanism breaks, not only when a shape does: in each SDMI phase exactly the
intended parameters move; the EMA target equals its closed form; each stop-gradient shows in the
gradient; each optimizer holds exactly its parameters; JMI trains both branches; the refresh pass
leaves the BatchNorm statistics alone; the linear probe never fits anything on the test features.

``scripts/mutation_check.py`` applies one-line faults to the code and checks that these tests catch them.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from ssrl.data.module import SSLDataModule
from ssrl.evaluation.probes import linear_probe_accuracy
from ssrl.run.job import PARADIGMS
from tests import published_losses
from tests.conftest import flat_parameters, two_batch_trainer


def build(cfg):
    data = SSLDataModule(cfg.data, cfg.seed)
    return PARADIGMS[cfg.paradigm.name](cfg, data.num_classes), data


def blocks(model) -> dict[str, torch.nn.Module]:
    named = {
        "online": model.online,
        "predictor": model.predictor,
        "target": model.target,
        "critic": model.objective,
        "probe": model.probe,
    }
    return {k: v for k, v in named.items() if v is not None and any(True for _ in v.parameters())}


def snapshot(module: torch.nn.Module, buffers: bool = False) -> list[torch.Tensor]:
    tensors = module.buffers() if buffers else module.parameters()
    return [t.detach().clone() for t in tensors]


def same(before: list[torch.Tensor], module: torch.nn.Module, buffers: bool = False) -> bool:
    """Bit-identical."""
    return all(torch.equal(a, b) for a, b in zip(before, snapshot(module, buffers), strict=True))


def views(model, data):
    data.setup()
    images, labels = next(iter(data.train_dataloader()))
    xa, xb = model.views(images, torch.Generator().manual_seed(0))
    return xa, xb, labels


# ------------------------------------------------------------------------------------------ SDMI phases
def fit_recording_phases(cfg):
    """Fit 2 batches; for every optimizer update, the set of blocks whose parameters changed, and
    whether the online network's BatchNorm statistics changed between the end of the E-step update and
    the end of the M-step update (the refresh pass lies between them)."""
    model, data = build(cfg)
    parts = blocks(model)
    moves, online_buffers_changed, last_e = [], [], {}
    update = model._update

    def recording_update(optimizer, loss, *statistics):
        before = {k: snapshot(m) for k, m in parts.items()}
        applied = update(optimizer, loss, *statistics)
        moves.append({k for k, m in parts.items() if not same(before[k], m)})
        if "online" in moves[-1]:
            last_e["buffers"] = snapshot(model.online, buffers=True)
        elif "buffers" in last_e:
            online_buffers_changed.append(not same(last_e["buffers"], model.online, buffers=True))
        return applied

    model._update = recording_update
    two_batch_trainer().fit(model, data)
    return model, moves, online_buffers_changed


@pytest.mark.parametrize("refresh", ["true", "false"])
def test_gradient_target_each_phase_moves_exactly_its_parameters(config, refresh):
    """E-step: online encoder, predictor, critic W and online probe move; the target is bit-identical.
    M-step: the target moves; everything else is bit-identical, online BatchNorm statistics included."""
    cfg = config("paradigm=sdmi", "predictor=mlp", "estimator.critic=bilinear", f"paradigm.refresh={refresh}")
    _, moves, buffers_changed = fit_recording_phases(cfg)
    e_step, m_step = {"online", "predictor", "critic", "probe"}, {"target"}
    assert moves == [e_step, m_step, e_step, m_step]
    assert buffers_changed == [False, False]


@pytest.mark.parametrize(
    "overrides",
    [["paradigm.target_update=ema"], ["paradigm.shared_weights=true", "marginal=none"]],
    ids=["ema", "shared"],
)
def test_single_optimizer_forms_move_only_the_online_side(config, overrides):
    cfg = config("paradigm=sdmi", "predictor=mlp", *overrides)
    _, moves, _ = fit_recording_phases(cfg)
    assert moves == [{"online", "predictor", "probe"}] * 2


# -------------------------------------------------------------------------------------------- optimizers
def optimizer_parameters(cfg):
    model, data = build(cfg)
    trainer = two_batch_trainer()
    trainer.fit(model, data)
    ids = [{id(p) for group in opt.param_groups for p in group["params"]} for opt in trainer.optimizers]
    return model, ids


def ids_of(*modules) -> set[int]:
    return {id(p) for m in modules if m is not None for p in m.parameters()}


@pytest.mark.parametrize(
    ("overrides", "second"),
    [
        (["paradigm=sdmi", "predictor=mlp", "estimator.critic=bilinear"], True),
        (["paradigm=sdmi", "predictor=mlp", "paradigm.target_update=ema"], False),
        (["paradigm=jmi", "paradigm.shared_encoder=false", "estimator.critic=bilinear"], False),
    ],
    ids=["sdmi-gradient", "sdmi-ema", "jmi-two-encoders"],
)
def test_each_optimizer_holds_exactly_its_parameters(config, overrides, second):
    model, ids = optimizer_parameters(config(*overrides))
    online_side = ids_of(model.online, model.predictor, model.objective, model.probe)
    if model.cfg.paradigm.name == "jmi":
        assert ids == [online_side | ids_of(model.target)]
    elif second:
        assert ids == [online_side, ids_of(model.target)]
    else:  # the EMA target is in no optimizer
        assert ids == [online_side]
    assert sum(len(s) for s in ids) == len(set().union(*ids))  # no parameter in two optimizers


# -------------------------------------------------------------------------------------------- EMA target
@pytest.mark.parametrize("end", ["null", "1.0"])
def test_ema_target_equals_its_closed_form(config, end):
    """xi_k = prod_{j<k} m_j xi_0 + sum_{i<=k} (1 - m_{i-1}) prod_{i<=j<k} m_j theta_i, theta_i the online
    weights after batch i, m_j the momentum of batch j (constant, or BYOL's cosine schedule)."""
    from ssrl.paradigms.optim import ema_momentum

    cfg = config(
        "paradigm=sdmi", "paradigm.target_update=ema", "paradigm.ema_momentum=0.6", f"paradigm.ema_momentum_end={end}"
    )
    model, data = build(cfg)
    xi0 = flat_parameters(model.target)
    thetas, targets = [], []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            thetas.append(flat_parameters(module.online))
            targets.append(flat_parameters(module.target))

    two_batch_trainer(epochs=2, callbacks=(Record(),)).fit(model, data)
    total = 4
    m = [ema_momentum(k, total, 0.6, None if end == "null" else float(end)) for k in range(total)]
    for k in range(1, total + 1):
        expected = torch.prod(torch.tensor(m[:k], dtype=torch.float64)).item() * xi0.double()
        for i in range(1, k + 1):
            weight = (1 - m[i - 1]) * torch.prod(torch.tensor(m[i:k], dtype=torch.float64)).item()
            expected = expected + weight * thetas[i - 1].double()
        torch.testing.assert_close(targets[k - 1].double(), expected, rtol=0, atol=1e-5)
    assert not torch.allclose(targets[0], thetas[0])  # the first update is an average, not a copy


def test_ema_target_keeps_its_own_batchnorm_statistics(config):
    """Only parameters are averaged: the target's BatchNorm statistics come from its own forward passes
    (one per batch here), not from the online network's."""
    cfg = config("paradigm=sdmi", "paradigm.target_update=ema")
    model, data = build(cfg)
    two_batch_trainer().fit(model, data)
    counts = [m.num_batches_tracked.item() for m in model.target.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert counts and set(counts) == {2}


# ------------------------------------------------------------------------------------------ stop-gradients
def test_simsiam_stop_gradient_shows_in_the_gradient(config):
    """The gradient of ssrl's SimSiam loss equals that of the published loss, which stops the gradient
    on z; without the stop-gradient the loss value would be the same but this gradient would not."""
    cfg = config("+preset=simsiam")
    model, data = build(cfg)
    xa, xb, _ = views(model, data)
    params = list(model.online.parameters()) + list(model.predictor.parameters())

    def grads(loss):
        return torch.autograd.grad(loss, params, allow_unused=True)

    ours = grads(model.loss_on(xa, xb))
    z1, z2 = model.online(xa)[1], model.online(xb)[1]
    reference = grads(published_losses.simsiam(model.predictor(z1), model.predictor(z2), z1, z2))
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    z1, z2 = model.online(xa)[1], model.online(xb)[1]
    p1, p2 = model.predictor(z1), model.predictor(z2)
    cos = torch.nn.functional.cosine_similarity
    no_stop = grads(-(cos(p1, z2).mean() + cos(p2, z1).mean()) / 2)  # the same value, another gradient
    assert any(not torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(ours, no_stop, strict=True))


def test_sdmi_e_step_stops_the_gradient_at_the_target(config):
    """The E-step loss reaches the online side only; the target (which has a graph, for the M-step)
    gets no gradient from it."""
    cfg = config("paradigm=sdmi", "predictor=mlp")
    model, data = build(cfg)
    xa, xb, _ = views(model, data)
    model.loss_on(xa, xb).backward()
    assert all(p.grad is None for p in model.target.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictor.parameters())


def test_jmi_has_no_stop_gradient_both_encoders_train(config):
    """JMI with shared_encoder=false: the loss's gradient reaches both encoders, and a training step
    moves both."""
    cfg = config("paradigm=jmi", "paradigm.shared_encoder=false")
    model, data = build(cfg)
    xa, xb, _ = views(model, data)
    model.loss_on(xa, xb).backward()
    for encoder in (model.online, model.target):
        assert all(p.grad is not None for p in encoder.parameters())
        assert sum(p.grad.abs().sum() for p in encoder.parameters()) > 0
    model.zero_grad()
    before = {name: snapshot(getattr(model, name)) for name in ("online", "target")}
    two_batch_trainer().fit(model, data)
    assert not same(before["online"], model.online) and not same(before["target"], model.target)
    for name in ("online", "target"):  # every weight of both branches moved
        moved = [not torch.equal(a, b) for a, b in zip(before[name], snapshot(getattr(model, name)), strict=True)]
        assert all(moved), name


# ------------------------------------------------------------------------------------------- evaluation
def test_linear_probe_fits_its_standardisation_on_the_labeled_features_only():
    """Test features shifted far from the labeled ones: a probe standardised on the labeled features
    sees them all on one side and scores 0.5; one standardised on the test features would re-centre
    them and score 1.0, having looked at the test data before scoring."""
    x = torch.tensor([[-1.0], [-0.5], [0.5], [1.0]]).repeat(10, 1)
    y = (x[:, 0] > 0).long()
    scores = linear_probe_accuracy((x, y), {"same": (x, y), "shifted": (x + 10.0, y)})
    assert scores == {"same": 1.0, "shifted": 0.5}
