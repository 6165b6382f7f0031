"""Each preset trains, and its loss on a fixed batch equals its method's published loss (tests/published_losses.py),
computed from the same networks on the same views."""

from __future__ import annotations

import math

import pytest
import torch

from ssrl.data.module import SSLDataModule
from ssrl.run.job import PARADIGMS, train
from tests import published_losses
from tests.conftest import two_batch_trainer


def preset_model_and_views(config, name):
    cfg = config(f"+preset={name}")
    data = SSLDataModule(cfg.data, cfg.seed)
    torch.manual_seed(0)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    data.setup()
    images, _ = next(iter(data.train_dataloader()))
    xa, xb = model.views(images, torch.Generator().manual_seed(1))
    return cfg, model, xa, xb


def test_simclr_is_nt_xent(config):
    cfg, model, xa, xb = preset_model_and_views(config, "simclr")
    ours = model.loss_on(xa, xb)
    z1, z2 = model.online(xa)[1], model.online(xb)[1]
    n = len(z1)
    expected = published_losses.nt_xent(z1, z2, cfg.estimator.tau) - math.log(2 * n - 1)
    assert ours.item() == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("name", ["barlow", "vicreg"])
def test_statistical_presets_are_their_losses(config, name):
    cfg, model, xa, xb = preset_model_and_views(config, name)
    ours = model.loss_on(xa, xb)
    z1, z2 = model.online(xa)[1], model.online(xb)[1]
    if name == "barlow":
        expected = published_losses.barlow_twins(z1, z2, cfg.marginal.weight)
    else:
        expected = published_losses.vicreg(z1, z2)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)


def test_byol_is_byol(config):
    cfg, model, xa, xb = preset_model_and_views(config, "byol")
    assert cfg.paradigm.target_update == "ema" and cfg.marginal.weight == 0
    ours = model.loss_on(xa, xb)
    q1, q2 = (model.predictor(model.online(x)[1]) for x in (xa, xb))
    z1, z2 = (model.target(x)[1] for x in (xa, xb))
    assert ours.item() + 4 == pytest.approx(published_losses.byol(q1, q2, z1, z2).item(), abs=1e-5)


def test_simsiam_is_simsiam(config):
    cfg, model, xa, xb = preset_model_and_views(config, "simsiam")
    assert model.target is None and cfg.marginal.weight == 0
    ours = model.loss_on(xa, xb)
    (z1, z2) = (model.online(x)[1] for x in (xa, xb))
    p1, p2 = model.predictor(z1), model.predictor(z2)
    assert ours.item() == pytest.approx(published_losses.simsiam(p1, p2, z1, z2).item(), abs=1e-6)


@pytest.mark.parametrize("name", ["simclr", "barlow", "vicreg", "byol", "simsiam"])
def test_preset_trains(config, tmp_path, name):
    cfg = config(f"+preset={name}", "trainer.max_epochs=1")
    summary = train(cfg, tmp_path, [f"+preset={name}"])
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert all(math.isfinite(v) for v in summary["mi"].values())


# ------------------------------------------------------------------------------ structure and schedule
def linear_shapes(head):
    return [(m.in_features, m.out_features, m.bias is not None) for m in head if isinstance(m, torch.nn.Linear)]


def batchnorms(head):
    return [(i, m.affine) for i, m in enumerate(head) if isinstance(m, torch.nn.BatchNorm1d)]


#: Small heads for the tests that train (the structure is checked at the preset's own sizes).
TINY_HEADS = ["backbone.projector_hidden_dim=64", "backbone.projector_dim=32", "predictor.hidden_dim=16"]


def preset_model(config, name, *overrides):
    """The preset at its own head sizes (TINY's smaller heads left out), on the tiny synthetic data."""
    cfg = config("data=synthetic", "trainer=debug", f"+preset={name}", *overrides, tiny=False)
    data = SSLDataModule(cfg.data, cfg.seed)
    return cfg, PARADIGMS[cfg.paradigm.name](cfg, data.num_classes), data


def fit_recording_lrs(model, data, batches=2, epochs=2):
    import pytorch_lightning as pl

    lrs = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            lrs.append([[g["lr"] for g in opt.param_groups] for opt in trainer.optimizers])

    two_batch_trainer(batches, epochs, (Record(),)).fit(model, data)
    return lrs


def test_byol_structure_and_momentum_schedule(config, monkeypatch):
    from ssrl.paradigms import sdmi

    cfg, model, data = preset_model(config, "byol")
    # Grill et al. Sec. 3.3: projector and predictor Linear(4096)-BN-ReLU-Linear(256), no output BN
    assert linear_shapes(model.online.projector) == [(512, 4096, False), (4096, 256, True)]
    assert batchnorms(model.online.projector) == [(1, True)]
    assert linear_shapes(model.predictor) == [(256, 4096, False), (4096, 256, True)]
    assert model.target is not model.online and not any(p.requires_grad for p in model.target.parameters())
    for xi, theta in zip(model.target.parameters(), model.online.parameters(), strict=True):
        assert torch.equal(xi, theta)  # the target starts as a copy
    # the cosine schedule tau_k = 1 - (1 - 0.996)(cos(pi k / K) + 1) / 2, checked where it is used
    momenta = []
    update = sdmi.ema_update
    monkeypatch.setattr(sdmi, "ema_update", lambda t, o, m: (momenta.append(m), update(t, o, m)))
    cfg, model, data = preset_model(config, "byol", *TINY_HEADS)
    fit_recording_lrs(model, data, batches=2, epochs=2)  # K = 4 batches
    expected = [1 - 0.004 * (math.cos(math.pi * k / 4) + 1) / 2 for k in range(4)]
    assert momenta == pytest.approx(expected, abs=1e-12)
    assert momenta[0] == pytest.approx(0.996) and momenta[2] == pytest.approx(0.998)
    assert sdmi.ema_momentum(4, 4, 0.996, 1.0) == 1.0  # and 1 at the end of training


def test_simsiam_structure_and_fixed_predictor_lr(config):
    cfg, model, data = preset_model(config, "simsiam")
    assert model.target is None and cfg.paradigm.symmetrize
    # projector Linear-BN-ReLU-Linear-BN, the output BN without affine and the Linear before it without bias
    assert linear_shapes(model.online.projector) == [(512, 2048, False), (2048, 2048, False)]
    assert batchnorms(model.online.projector) == [(1, True), (4, False)]
    # predictor: a bottleneck d -> d/4 -> d, BN on the hidden layer only
    assert linear_shapes(model.predictor) == [(2048, 512, False), (512, 2048, True)]
    assert batchnorms(model.predictor) == [(1, True)]
    cfg, model, data = preset_model(config, "simsiam", *TINY_HEADS)
    lrs = fit_recording_lrs(model, data, batches=2, epochs=2)
    encoder, predictor = [step[0][0] for step in lrs], [step[0][1] for step in lrs]
    assert predictor == [0.03] * 4  # fixed
    assert encoder[0] < 0.03 and encoder == sorted(encoder, reverse=True) and encoder[-1] == 0.0  # decays


@pytest.mark.parametrize(("name", "layers"), [("vicreg", 3), ("barlow", 3), ("simclr", 2)])
def test_jmi_preset_heads(config, name, layers):
    cfg, model, _ = preset_model(config, name)
    assert model.predictor is None and cfg.paradigm.shared_encoder
    shapes = linear_shapes(model.online.projector)
    assert len(shapes) == layers and len(batchnorms(model.online.projector)) == layers - 1
    width, dim = cfg.backbone.projector_hidden_dim, cfg.backbone.projector_dim
    assert shapes[0][:2] == (512, width) and shapes[-1][:2] == (width, dim)


def test_vicreg_averages_its_variance_terms():
    """On embeddings whose std is 0 in every dimension, each v() is 1: the marginal term is
    25 * (1 + 1) / 2 = 25, not 50."""
    from ssrl.mi.surrogates import vicreg

    z = torch.zeros(8, 4)
    assert vicreg(z, z).marginal.item() == pytest.approx(25 * (1 - math.sqrt(1e-4)))


def test_cifar100_has_its_own_normalisation(config):
    c10, c100 = (config(f"data={name}", tiny=False).data.views for name in ("cifar10", "cifar100"))
    assert list(c100.mean) == [0.5071, 0.4865, 0.4409] and list(c100.std) == [0.2673, 0.2564, 0.2762]
    assert list(c100.mean) != list(c10.mean)
