"""Each preset trains, and its loss on a fixed batch equals its method's published loss (tests/published_losses.py),
computed from the same networks on the same views."""

from __future__ import annotations

import math

import pytest
import torch

from ssrl.data.module import SSLDataModule
from ssrl.run.job import PARADIGMS, train
from tests import published_losses


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
