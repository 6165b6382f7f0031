"""The pinned untrained baseline: computed once per data set and backbone and read from its cache by
every other run (also under concurrent jobs), the run's random state untouched, and gains whose
interval carries the baseline's variance over its inits."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from ssrl.analysis.accuracy import Group, correctness, images_part
from ssrl.data.module import SSLDataModule
from ssrl.data.views import BatchedViews
from ssrl.run import baseline


def _pinned(cfg):
    data = SSLDataModule(cfg.data, cfg.seed)
    views = BatchedViews(cfg.data.views, cfg.data.image_size, cfg.data.channels)
    return baseline.pinned(cfg, data.eval_loaders, views.clean, torch.device("cpu"), "protocol")


def test_a_grid_computes_the_baseline_once(config, tmp_path, monkeypatch):
    """Three jobs of a grid (two at once, then another seed and projector size that share data and
    backbone) compute it once, and the file is not rewritten; a different data set computes its own."""
    calls = []
    compute = baseline.compute
    monkeypatch.setattr(baseline, "compute", lambda *a: calls.append(1) or compute(*a))
    cache = f"eval.baseline_cache_dir={tmp_path}"
    results, cfg = [], config(cache, "seed=1")
    jobs = [threading.Thread(target=lambda: results.append(_pinned(cfg))) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert len(calls) == 1 and sorted(r["computed"] for r in results) == [False, True]
    entry = tmp_path / f"{results[0]['key']}.json"
    written = entry.stat().st_mtime_ns
    again = _pinned(config(cache, "seed=2", "backbone.projector_dim=16"))
    assert len(calls) == 1 and not again["computed"] and entry.stat().st_mtime_ns == written
    assert again["test"] == results[0]["test"] and again["inits"] == 2 == len(again["test"]["probe_correct"])
    other = _pinned(config(cache, "data.noise=0.5"))
    assert len(calls) == 2 and other["computed"] and other["key"] != again["key"]


def test_the_baseline_leaves_the_runs_random_state_alone(config, tmp_path):
    cfg = config(f"eval.baseline_cache_dir={tmp_path}")
    torch.manual_seed(3)
    _pinned(cfg)
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3))


def test_the_inits_are_different_networks(config, tmp_path):
    """Init i draws from its own seed: two inits' untrained features (and so their kNN tables) differ."""
    result = baseline.compute(
        config(f"eval.baseline_cache_dir={tmp_path}", "data.noise=2.0"),
        SSLDataModule(config("data.noise=2.0").data, 0).eval_loaders,
        lambda x: x.float() / 255,
        torch.device("cpu"),
    )
    assert len(set(result["test"]["knn_correct"])) > 1 or len(set(result["test"]["probe_correct"])) > 1


def test_the_gain_interval_carries_the_baselines_variance():
    """A run against 4 inits on 6 images: the gain's variance is the per-image differences' part plus the
    inits' runs' part (MS_run - MS_e) / (n M), by hand: so it is wider than the images' part alone."""
    inits = ["110000", "111100", "000011", "111111"]
    run = "111110"
    pinned = {"key": "k", "inits": 4, "seconds": 1.0, "computed": True}
    for split in ("val", "test"):
        pinned[split] = {"probe_correct": inits, "knn_correct": inits}
    fields = baseline.summary_fields(pinned, {"test": {"probe_correct": run, "knn_correct": run}})
    base = Group(correctness(inits))
    c = correctness(inits)
    rows, cols, grand = c.mean(1), c.mean(0), c.mean()
    ms_run = 6 * ((rows - grand) ** 2).sum() / 3
    ms_e = ((c - rows[:, None] - cols[None, :] + grand) ** 2).sum() / 15
    runs_part = (ms_run - ms_e) / 24
    images = images_part(correctness([run])[0] - base.per_image)[0]
    gain = fields["gain"]["probe"]
    assert gain["mean"] == pytest.approx(5 / 6 - grand)
    half = gain["high"] - gain["mean"]
    df = (runs_part + images) ** 2 / (runs_part**2 / 3 + images**2 / 5)
    from ssrl.analysis.intervals import t_quantile

    assert half == pytest.approx(t_quantile(df) * math.sqrt(runs_part + images))
    assert runs_part > 0 and gain["df"] == pytest.approx(df)
    assert fields["baseline"]["test"]["probe_interval"]["mean"] == pytest.approx(grand)


def test_too_few_inits_are_refused_naming_the_field(config):
    from ssrl.errors import ConfigError
    from ssrl.validate import validate

    with pytest.raises(ConfigError, match=r"eval.baseline_inits=1: must be >= 2"):
        validate(config("eval.baseline_inits=1"))
