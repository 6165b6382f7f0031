"""The unbounded critics (dot, bilinear) train only with gradient clipping, and never with NWJ; the
refusal's advice, followed, trains a finite run; a non-finite loss's advice names what bounds the
scores (issue 25, case 9)."""

from __future__ import annotations

import math

import pytest
import torch

from ssrl.errors import ConfigError
from ssrl.paradigms.jmi import JMI
from ssrl.run.job import train
from ssrl.validate import validate


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["estimator.critic=dot"], "estimator.critic=dot: its scores grow with the embeddings' norm, without bound"),
        (["estimator=infonce", "estimator.critic=bilinear"], "estimator.critic=bilinear: its scores grow"),
        (["estimator=nwj", "estimator.critic=dot", "trainer.gradient_clip_val=1.0"], "estimator=nwj with estimator."),
    ],
)
def test_an_unbounded_critic_without_what_it_needs_is_refused(config, overrides, line):
    with pytest.raises(ConfigError, match="^" + line.replace("(", r"\(").replace(")", r"\)")) as error:
        validate(config(*overrides))
    assert "\n" not in str(error.value)


def test_an_unbounded_critic_with_clipping_or_untrained_is_accepted(config):
    validate(config("estimator.critic=bilinear", "trainer.gradient_clip_val=1.0"))
    validate(config("marginal=barlow", "estimator.critic=dot"))  # a surrogate trains; the critic only reports


def test_following_the_advice_trains_the_dot_critic_finitely(config, tmp_path):
    with pytest.raises(ConfigError, match=r"set trainer\.gradient_clip_val \(1\.0 trains it\)"):
        validate(config("estimator.critic=dot"))
    # 10 batches: unclipped, the dot critic's loss overflowed at batch 5 of the first epoch
    overrides = ["estimator.critic=dot", "trainer.gradient_clip_val=1.0", "trainer.limit_train_batches=1.0"]
    summary = train(config(*overrides, "trainer.max_epochs=2"), tmp_path, overrides)
    assert summary["status"] == "completed" and summary["steps"] == 10 and summary["skipped_steps"] == 0
    assert all(math.isfinite(v) for v in summary["mi"].values())


@pytest.mark.parametrize(
    ("critic", "advice"), [("cosine", "raise estimator.tau"), ("dot", "lower trainer.gradient_clip_val")]
)
def test_a_non_finite_loss_names_what_bounds_the_critics_scores(config, critic, advice):
    model = JMI(config(f"estimator.critic={critic}"), num_classes=4)
    assert model.update_allowed(torch.tensor(float("nan")), [])  # noted on the device, stopped where read
    with pytest.raises(FloatingPointError, match=f"lower optim.lr, {advice}, or set on_nonfinite_loss=skip"):
        model.raise_if_nonfinite()
