"""Three splits, used honestly: disjoint, fixed by their seed, and training never sees val or test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ssrl.data.datasets import load_splits
from ssrl.data.module import SSLDataModule
from ssrl.data.splits import three_splits
from ssrl.data.styled_digits import source_split
from ssrl.run.job import train
from tests.conftest import compose_config


def _ids(part) -> set[int]:
    return set(part.images.flatten(1)[:, 0].tolist())


def _cut(seed: int):
    labels = np.arange(600) % 6
    images = np.arange(600)[:, None, None, None] * np.ones((1, 1, 2, 2), dtype=np.int64)  # image i holds i
    cfg = OmegaConf.create({"test_fraction": 0.2, "val_fraction": 0.25, "split_seed": seed})
    return three_splits(images, labels, cfg)


def test_three_splits_are_disjoint_whole_stratified_and_fixed_by_their_seed():
    splits = _cut(0)
    train, val, test = _ids(splits.train), _ids(splits.val), _ids(splits.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(600)) and (len(test), len(val)) == (120, 120)
    assert torch.bincount(splits.val.labels).tolist() == [20] * 6  # stratified
    assert _ids(_cut(0).val) == val and _ids(_cut(1).val) != val
    assert splits.labeled is splits.train  # the probes are fit on training images only


@pytest.mark.parametrize("name", ["digits", "synthetic", "styled_digits"])
def test_every_generated_set_has_three_disjoint_splits(name):
    splits = load_splits(compose_config(f"data={name}").data)
    flat = {k: {bytes(x.numpy()) for x in getattr(splits, k).images} for k in ("train", "val", "test")}
    if name != "styled_digits":  # styled digits: the cut is by source digit, rendered with fresh styles
        assert not (flat["train"] & flat["val"] or flat["train"] & flat["test"] or flat["val"] & flat["test"])
    assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
    again = load_splits(compose_config(f"data={name}").data)
    assert torch.equal(again.val.images, splits.val.images) and torch.equal(again.test.images, splits.test.images)


def test_styled_digits_cut_by_source_digit():
    """No handwritten digit lands in two splits; each split renders exactly its sources' labels."""
    from sklearn.datasets import load_digits

    cfg = compose_config("data=styled_digits").data
    labels = load_digits().target
    train, val, test = (set(part.tolist()) for part in source_split(labels, cfg))
    assert not (train & val or train & test or val & test) and len(train | val | test) == len(labels)
    splits = load_splits(cfg)
    assert len(splits.train) == cfg.renders * len(train)
    assert (len(splits.val), len(splits.test)) == (len(val), len(test))
    kept, _, held = source_split(labels, cfg)
    assert splits.train.labels.tolist() == labels[np.tile(kept, cfg.renders)].tolist()
    assert splits.test.labels.tolist() == labels[held].tolist()


def test_training_batches_come_from_train_only():
    cfg = compose_config()
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    seen = {bytes(x.numpy()) for images, _ in data._loader(data.splits.train, train=True) for x in images}
    held = {bytes(x.numpy()) for part in (data.splits.val, data.splits.test) for x in part.images}
    assert seen and not (seen & held)


def test_collapse_rule_is_read_from_config(tmp_path):
    lenient_rule = ("eval.collapse_std_fraction=0.000001", "eval.collapse_min_rank=0")
    lenient = train(compose_config(*lenient_rule), tmp_path / "a", [])
    strict = train(compose_config("eval.collapse_std_fraction=100"), tmp_path / "b", [])
    assert lenient["collapsed"] is False and strict["collapsed"] is True
    assert strict["protocol"]["collapse_rule"] == {"std_fraction": 100.0, "min_rank": 6.6}
    assert lenient["history"][-1]["embedding_std"] == strict["history"][-1]["embedding_std"]  # same run


def test_per_epoch_diagnostics_read_val_and_the_probes_score_val_and_test():
    cfg = compose_config()
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    val = torch.cat([images for images, _ in data.val_dataloader()])
    assert torch.equal(val, data.splits.val.images)
    loaders = data.eval_loaders()
    for name in ("labeled", "val", "test"):
        images = torch.cat([x for x, _ in loaders[name]])
        assert torch.equal(images, getattr(data.splits, name).images), name
