"""ssrl-export: a run's backbone as safetensors + a JSON record; ssrl.load_backbone rebuilds it without
reading a pickle, and torchvision's own ResNet loads it with strict=True."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import ssrl
from ssrl.evaluate_run import load_checkpoint
from ssrl.export import main
from ssrl.nets.backbones import build_backbone
from ssrl.nets.export import save
from ssrl.run.job import train
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of ResNet-18 at width 64 with the ImageNet stem (torchvision's resnet18), normalising
    its inputs with a mean and std of its own."""
    folder = tmp_path_factory.mktemp("run")
    overrides = ["backbone.cifar_stem=false", "data.views.mean=[0.4,0.5,0.6]", "data.views.std=[0.2,0.25,0.3]"]
    train(compose_config(*overrides), folder, overrides)
    return folder


@pytest.fixture(scope="module")
def batch(run):
    """The run's model (rebuilt from its checkpoint, as ssrl-eval does) and a batch of its val images,
    prepared as in evaluation."""
    model, data, _ = load_checkpoint(run)
    images, _ = next(iter(data.eval_loaders()["val"]))
    return model.eval(), model.views.clean(images)


def no_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was read")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)


def test_the_exported_backbone_gives_the_runs_features_exactly(run, batch, capsys, monkeypatch):
    model, x = batch
    out = run / "exported" / "r18.safetensors"
    main([str(run), "--out", str(out), "--projector"])
    assert capsys.readouterr().out.strip().startswith(f"ssrl-export: {out} and {out.with_suffix('.json')}")
    record = json.loads(out.with_suffix(".json").read_text())
    views = model.cfg.data.views
    assert {k: record[k] for k in ("architecture", "width", "stem", "in_channels", "feature_dim", "input_size")} == {
        "architecture": "resnet18",
        "width": 64,
        "stem": "imagenet",
        "in_channels": 3,
        "feature_dim": 512,
        "input_size": model.cfg.data.image_size,
    }
    assert record["mean"] == list(views.mean) == [0.4, 0.5, 0.6] and record["std"] == list(views.std)
    assert record["torchvision"] == "torchvision.models.resnet18" and record["projector"]["out_dim"] == 32
    with safe_open(str(out), "pt") as f:
        keys = set(f.keys())
    assert "conv1.weight" in keys and "projector.0.weight" in keys and not any(k.startswith("fc.") for k in keys)

    no_pickle(monkeypatch)
    backbone, encoder = ssrl.load_backbone(out), ssrl.load_backbone(out, projector=True)
    with torch.no_grad():
        features, embeddings = model.online(x)
        assert torch.equal(backbone(x), features)  # exact in fp32
        assert torch.equal(encoder(x), embeddings)
    assert not backbone.training


def test_torchvisions_resnet18_loads_it_with_strict_true(run, batch, tmp_path):
    model, x = batch
    main([str(run), "--out", str(tmp_path / "r18.safetensors")])
    net = torchvision.models.resnet18()
    net.fc = nn.Identity()  # the export ends at the pooled features: no classifier
    net.load_state_dict(load_file(str(tmp_path / "r18.safetensors")), strict=True)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), model.online.backbone(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("cifar_stem", [False, True])
def test_torchvision_loads_either_stem_as_the_docs_say(tmp_path, name, cifar_stem):
    """ImageNet stem: torchvision's model as it is; CIFAR stem: its two stem lines swapped, as
    docs/loggers_and_export.md shows. Both with fc = Identity, strict=True."""
    torch.manual_seed(0)
    ours, _ = build_backbone(name, 3, cifar_stem, 64)
    ours.eval()
    save(tmp_path / "b.safetensors", ours, {})
    net = getattr(torchvision.models, name)()
    if cifar_stem:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    net.load_state_dict(load_file(str(tmp_path / "b.safetensors")), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), ours(x))


def test_a_folder_without_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"ssrl-export: error: {tmp_path}: no checkpoint there (expected a run folder with "
        "checkpoints/last.ckpt or a .ckpt file)"
    )
