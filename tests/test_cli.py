"""Bad input on the command line: one clear line naming the field and what is allowed, exit status 2,
and no run folder."""

from __future__ import annotations

import sys

import pytest

from ssrl import train

CASES = [
    (["paradigm=foo"], "paradigm=foo: no such option; allowed: jmi, sdmi"),
    (["estimator.tua=0.2"], "estimator.tua: no such field; allowed fields here: name, critic, tau"),
    (
        ["paradigm=jmi", "paradigm.ema_momentum=0.5"],
        "paradigm.ema_momentum: no such field; allowed fields here: name, shared_encoder",
    ),
    (
        ["data=imagefolder", "data.root=/nonexistent"],
        "data.root=/nonexistent: expected class folders under /nonexistent/train",
    ),
    (["estimator.tau=0"], "estimator.tau=0.0: must be > 0"),
    (["data.batch_size=1"], "data.batch_size=1: must be >= 2 (the marginal term needs negative pairs)"),
    (["data=cifar10", "data.root=/nowhere"], "data.root=/nowhere: /nowhere/cifar-10-batches-py does not exist"),
    (["paradigm=sdmi", "marginal=barlow"], "marginal=barlow is a JMI surrogate; with paradigm=sdmi use marginal=exact"),
    (["predictor=mlp"], "predictor=mlp sits on SDMI's online branch; with paradigm=jmi use predictor=none"),
    (["data.views.flip_p=1.5"], "data.views.flip_p=1.5: a probability must be in [0, 1]"),
    (["marginal.weight=1.5"], "marginal.weight=1.5: lambda, the weight of the marginal term, must be in [0, 1]"),
    (["marginal.weight=nan"], "marginal.weight=nan: lambda, the weight of the marginal term, must be in [0, 1]"),
    (["marginal=barlow", "marginal.weight=-1"], "marginal.weight=-1.0: must be a finite number >= 0"),
    (["seed=-1"], "seed=-1: must be in [0, 4294967296)"),
    (["eval.mi_probe_every_n_epochs=-1"], "eval.mi_probe_every_n_epochs=-1: must be >= 0 (0 turns the MI probe off)"),
    (["eval.mi_probe_max_images=1"], "eval.mi_probe_max_images=1: must be >= 2"),
    (["eval.mi_probe_critic=mlp"], "expected one of [cosine, projection]"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    (["estimator.critic=l1"], "expected one of [cosine, dot, bilinear]"),
    (  # issue 12, case 6: 40 images, 20% test, then 20% of the rest val: 25 to train on, fewer than one batch
        ["data=synthetic", "trainer.max_epochs=2", "data.num_samples=40", "data.batch_size=64"],
        "data.batch_size=64: the training split holds 25 images, fewer than one batch of 64, so no step would train",
    ),
    (  # 100 images: 20 test, 16 val, 64 train
        ["data=synthetic", "data.num_samples=100", "data.batch_size=32"],
        "data.batch_size=32: the val split holds 16 images, fewer than one batch",
    ),
    (
        ["data=synthetic", "data.num_samples=100", "data.batch_size=48", "trainer.devices=2"],
        "the training split holds 64 images, fewer than one batch of 96 (48 per process x 2 processes)",
    ),
    (  # issue 12, case 9
        ["paradigm=sdmi", "trainer.accumulate_grad_batches=2"],
        "trainer.accumulate_grad_batches=2: not supported with paradigm=sdmi, whose E-step and M-step alternate",
    ),
    (
        ["trainer.gradient_clip_algorithm=max"],
        "trainer.gradient_clip_algorithm=max is not allowed; allowed: norm, value",
    ),
    (
        ["-m", "paradigm=jmi,sdmi", "estimator=cos_dv,bogus"],
        "estimator=bogus: no such option; allowed: cos_dv, infonce, jsd, nwj",
    ),
    (["-m", "estimator=glob(j*)", "data.batch_size=1"], "data.batch_size=1: must be >= 2"),  # a glob sweep
    (  # a group outside the defaults list, without its +
        ["preset=simsiam"],
        "preset=simsiam: preset is not in the defaults list, so there is none to override; write +preset=simsiam",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *args])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ssrl-train: error: "), lines
    assert message in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_empty_image_folder_is_one_clear_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "images" / "train").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", "data=imagefolder", f"data.root={tmp_path / 'images'}"])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code == 2
    assert f"expected class folders under {tmp_path / 'images' / 'train'}" in capsys.readouterr().err


def test_gpu_without_cuda_is_one_clear_line(tmp_path, monkeypatch, capsys):
    """trainer=gpu where torch sees no CUDA device: what was asked, why not, the way to the CPU; exit 2
    before any work and before a run folder (Lightning would fail after start-up with a traceback)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", "data=synthetic", "trainer=gpu"])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "ssrl-train: error: trainer.accelerator=gpu (trainer=gpu): no CUDA device is visible to torch on this "
        "machine (torch.cuda.is_available() is False); run on the CPU with trainer=cpu"
    ]
    assert not (tmp_path / "outputs").exists()


def test_small_data_set_fails_in_the_job_too(tmp_path):
    """The same rule where a job is started without the command line (the compose API, a launcher)."""
    from ssrl.errors import ConfigError
    from ssrl.run.job import train as train_job
    from tests.conftest import compose_config

    cfg = compose_config("data.num_samples=40", "data.batch_size=64")
    with pytest.raises(ConfigError, match="data.batch_size=64: the training split holds 25 images"):
        train_job(cfg, tmp_path / "run", [])
    assert not (tmp_path / "run" / "init_metrics.json").exists()


def test_help_says_what_ssrl_train_is_and_lists_the_groups_a_user_picks(tmp_path, monkeypatch, capsys):
    """Issue 12, case 12: Hydra's help template, opened by what ssrl-train is and example commands."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code in (0, None)
    text = capsys.readouterr().out
    assert text.startswith("ssrl-train trains one self-supervised run")
    assert "ssrl-train paradigm=sdmi estimator=jsd" in text and "ssrl-train -m paradigm=jmi,sdmi" in text
    groups = text.split("== Choose one option per group (group=option) ==\n")[1].split("\n\n")[0].splitlines()
    picked = [line.split("=")[0].strip() for line in groups]
    axes = ["paradigm", "estimator", "marginal", "predictor", "backbone", "data", "optim", "trainer", "logger"]
    assert picked[:9] == axes
    assert {"+preset", "+experiment", "hydra/launcher"} <= set(picked)
    assert "  paradigm=jmi|sdmi   (default: jmi)" in groups
    assert "schema" not in text and "powered by Hydra" not in text
    assert not (tmp_path / "outputs").exists()


def test_the_pre_check_expands_an_experiment_files_sweeps():
    """Issue 25, case 8: the SDMI jobs of +experiment=collapse refuse gradient accumulation before any job
    trains (called here directly: a pre-check that missed it would start the sweep)."""
    from ssrl.errors import ConfigError
    from ssrl.run.cli import check

    args = ["+experiment=collapse", "estimator=cos_dv", "seed=0", "trainer.accumulate_grad_batches=2", "data=synthetic"]
    with pytest.raises(ConfigError, match="trainer.accumulate_grad_batches=2: not supported with paradigm=sdmi"):
        check(train.CONFIG_DIR, "train", args)


def test_variants_expand_globs_and_keep_the_last_value_of_a_key():
    """Issue 25, case 8: a glob sweep lists the group's options; a key swept by an experiment file and
    set again on the command line takes the command line's value, as Hydra's sweeper does."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ssrl.run import tensorboard
    from ssrl.run.cli import variants

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=train.CONFIG_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().hydra.config_loader
        assert variants(["estimator=glob(*,exclude=[cos_dv,infonce])", "seed=0"], loader) == [
            ["estimator=jsd", "seed=0"],
            ["estimator=nwj", "seed=0"],
        ]
        assert tensorboard.swept_keys(["estimator=glob(j*)", "seed=0,1"], None) == {
            "estimator": ["jsd"],
            "seed": ["0", "1"],
        }  # the keys that name a sweep's jobs in TensorBoard
    assert variants(["seed=0,1,2", "+ablation=a,b", "seed=5"]) == [["seed=5", "+ablation=a"], ["seed=5", "+ablation=b"]]
