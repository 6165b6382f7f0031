"""SDMI's stop-gradient: in each phase only the block that moves gets a gradient; and the forward
passes each setting runs per batch, as ssrl/paradigms/sdmi.py documents them.

Real configs, a real Lightning Trainer, two batches. Before each backward pass every gradient is
cleared, so what is recorded after it is exactly what that pass reached.
"""

from __future__ import annotations

import pytest
import torch

from ssrl.data.module import SSLDataModule
from ssrl.paradigms.sdmi import SDMI
from tests.conftest import flat_parameters, two_batch_trainer


def _fit_recording(cfg, paradigm=SDMI):
    data = SSLDataModule(cfg.data, cfg.seed)
    model = paradigm(cfg, data.num_classes)
    passes, forwards = [], []
    for name in ("online", "target"):
        if getattr(model, name, None) is not None:
            getattr(model, name).register_forward_hook(
                lambda *_, name=name: forwards.append((name, torch.is_grad_enabled()))
            )
    blocks = {"online": model.online, "predictor": model.predictor, "target": model.target}
    blocks = {k: v for k, v in blocks.items() if v is not None}
    backward = model.manual_backward

    def recording_backward(loss, *args, **kwargs):
        for p in model.parameters():
            p.grad = None
        backward(loss, *args, **kwargs)
        passes.append(
            {k: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()) for k, m in blocks.items()}
        )

    model.manual_backward = recording_backward
    two_batch_trainer().fit(model, data)
    model.forwards_per_batch = {"grad": sum(g for _, g in forwards) / 2, "no_grad": sum(not g for _, g in forwards) / 2}
    return model, passes


@pytest.mark.parametrize("predictor", ["none", "mlp"])
@pytest.mark.parametrize("refresh", ["true", "false"])
def test_gradient_target_each_phase_moves_only_its_block(config, predictor, refresh):
    cfg = config("paradigm=sdmi", f"predictor={predictor}", f"paradigm.refresh={refresh}")
    _, passes = _fit_recording(cfg)
    assert len(passes) == 4  # E, M per batch
    for e_step, m_step in zip(passes[::2], passes[1::2], strict=True):
        assert e_step["online"] and not e_step["target"], e_step
        assert m_step["target"] and not m_step["online"], m_step
        if predictor == "mlp":
            assert e_step["predictor"] and not m_step["predictor"]


def test_more_steps_per_phase(config):
    _, passes = _fit_recording(config("paradigm=sdmi", "paradigm.e_steps=2", "paradigm.m_steps=3"))
    pattern = [("online" if p["online"] else "") + ("target" if p["target"] else "") for p in passes]
    assert pattern == ["online", "online", "target", "target", "target"] * 2


def test_ema_target_gets_no_gradient_and_follows_the_online_encoder(config):
    cfg = config("paradigm=sdmi", "paradigm.target_update=ema", "paradigm.ema_momentum=0.9", "predictor=mlp")
    model, passes = _fit_recording(cfg)
    assert len(passes) == 2 and all(p["online"] and not p["target"] for p in passes)
    assert all(not p.requires_grad for p in model.target.parameters())
    # after two updates the target is an average of online weights, not the initial weights, and not equal
    online = flat_parameters(model.online)
    target = flat_parameters(model.target)
    assert not torch.allclose(online, target)


def test_shared_weights_is_one_encoder_with_one_step(config):
    cfg = config("paradigm=sdmi", "paradigm.shared_weights=true", "predictor=mlp", "marginal=none")
    model, passes = _fit_recording(cfg)
    assert model.target is None and len(passes) == 2
    assert all(p["online"] and p["predictor"] for p in passes)


@pytest.mark.parametrize(
    ("overrides", "grad", "no_grad", "backward"),
    [
        (["paradigm.refresh=true"], 2, 1, 2),
        (["paradigm.refresh=false"], 2, 0, 2),
        (["paradigm.target_update=ema"], 1, 1, 1),
        (["paradigm.shared_weights=true"], 1, 1, 1),
        (["paradigm.refresh=true", "paradigm.symmetrize=true"], 4, 2, 2),
        (["paradigm.target_update=ema", "paradigm.symmetrize=true"], 2, 2, 1),
        (["paradigm.shared_weights=true", "paradigm.symmetrize=true"], 2, 0, 1),
    ],
)
def test_forward_passes_per_batch(config, overrides, grad, no_grad, backward):
    model, passes = _fit_recording(config("paradigm=sdmi", *overrides))
    assert model.forwards_per_batch == {"grad": grad, "no_grad": no_grad}
    assert len(passes) == 2 * backward


def test_jmi_forward_passes_per_batch(config):
    from ssrl.paradigms.jmi import JMI

    model, _ = _fit_recording(config("paradigm=jmi"), paradigm=JMI)
    assert model.forwards_per_batch == {"grad": 2, "no_grad": 0}


def test_jmi_has_one_optimizer_and_gradients_through_both_views(config):
    from ssrl.paradigms.jmi import JMI

    cfg = config("paradigm=jmi")
    data = SSLDataModule(cfg.data, cfg.seed)
    model = JMI(cfg, data.num_classes)
    data.setup()
    images, labels = next(iter(data.train_dataloader()))
    xa, xb = model.views(images, torch.Generator().manual_seed(0))
    xa.requires_grad_(True)
    xb.requires_grad_(True)
    step = model.objective(model.branch_a(xa)[1], model.branch_b(xb))
    step.loss.backward()
    assert xa.grad.abs().sum() > 0 and xb.grad.abs().sum() > 0
