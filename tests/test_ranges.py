"""Every numeric config field's range, checked before any work in one table (ssrl.validate.RANGES):
bad values give one line naming the field and what it allows (issue 25, case 2); so does a precision that
holds the weights in 16 bits (case 15)."""

from __future__ import annotations

import dataclasses
import sys
import typing

import pytest

from ssrl import config as schemas
from ssrl import train
from ssrl.errors import ConfigError
from ssrl.validate import RANGES, validate

SDMI = ["paradigm=sdmi", "predictor=mlp"]
BAD = [
    ([*SDMI, "predictor.lr_scale=-1"], "predictor.lr_scale=-1.0: must be > 0"),
    (["estimator.tau=inf"], "estimator.tau=inf: must be finite and > 0"),
    (["trainer.max_steps=0"], "trainer.max_steps=0: must be >= 1 or -1 (-1: no limit)"),
    (["backbone.projector_hidden_dim=0"], "backbone.projector_hidden_dim=0: must be >= 1"),
    (["optim.lr=-0.1"], "optim.lr=-0.1: must be > 0"),
    (["optim.momentum=1.0"], "optim.momentum=1.0: must be in [0, 1)"),
    (["optim.weight_decay=-1e-4"], "optim.weight_decay=-0.0001: must be >= 0"),
    ([*SDMI, "paradigm.ema_momentum=1.0"], "paradigm.ema_momentum=1.0: must be in [0, 1)"),
    (["data.views.jitter_p=1.2"], "data.views.jitter_p=1.2: a probability must be in [0, 1]"),
    (["data.views.blur_p=[0.5,-0.1]"], "data.views.blur_p=[0.5, -0.1]: a probability must be in [0, 1]"),
    (["data.views.hue=0.7"], "data.views.hue=0.7: must be in [0, 0.5]"),
    (["data.views.std=[0.5,0.0,0.5]"], "data.views.std=[0.5, 0.0, 0.5]: must be > 0"),
    (["data.num_workers=-1"], "data.num_workers=-1: must be >= 0"),
    (["data.num_classes=1"], "data.num_classes=1: must be >= 2"),
    (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0: must be in (0, 1] or >= 1 (a fraction"),
    (["trainer.limit_val_batches=1.5"], "trainer.limit_val_batches=1.5: must be in (0, 1] or >= 1 (a fraction"),
    (["eval.collapse_std_fraction=nan"], "eval.collapse_std_fraction=nan: must be finite and >= 0"),
    (["marginal=vicreg", "marginal.variance=-25"], "marginal.variance=-25.0: must be >= 0"),
    (["data=styled_digits", "data.digit_min=12", "data.digit_max=9"], "data.digit_max=9: must be >= data.digit_min=12"),
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1.0: must be >= 0 or null (0 or null: no clipping)"),
    (
        ["trainer.precision=bf16-true"],
        "trainer.precision=bf16-true is not supported: weights held in 16 bits; use bf16-mixed",
    ),
    (
        ["trainer.precision=16-true"],
        "trainer.precision=16-true is not supported: weights held in 16 bits; use bf16-mixed",
    ),
]
GOOD = [
    ["trainer.max_steps=-1"],
    ["trainer.max_steps=1"],
    ["trainer.limit_train_batches=1.0"],
    ["trainer.limit_train_batches=3"],
    ["trainer.gradient_clip_val=null"],
    [*SDMI, "predictor.lr_scale=0.5", "paradigm.ema_momentum=0.0"],
    ["data.views.hue=0.5", "eval.mi_probe_every_n_epochs=0"],
    ["trainer.precision=16-mixed"],
    ["trainer.precision=32"],
]


@pytest.mark.parametrize(("overrides", "line"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_an_out_of_range_value_is_one_line_naming_the_field(config, overrides, line):
    with pytest.raises(ConfigError) as error:
        validate(config(*overrides))
    assert str(error.value).startswith(line) and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides", GOOD, ids=[" ".join(o) for o in GOOD])
def test_values_at_the_edges_of_their_ranges_are_accepted(config, overrides):
    validate(config(*overrides))


#: Numeric fields whose rule spans fields (ssrl.validate.validate), not a range of their own.
CROSS_FIELD = {"marginal.weight", "paradigm.ema_momentum_end"}
GROUPS = {schemas.TrainConfig: "", schemas.EvalConfig: "eval.", schemas.ViewsConfig: "data.views."}


def numeric_fields() -> set[str]:
    """Every int, float (or optional, or list of them) field of every schema, as <group>.<field>."""
    prefixes = dict(GROUPS)
    for group, named in schemas.SCHEMAS.items():
        prefixes.update({schema: f"{group}." for schema in named.values()})
    found = set()
    for schema, prefix in prefixes.items():
        for f in dataclasses.fields(schema):
            kind = typing.get_type_hints(schema)[f.name]
            parts = set(typing.get_args(kind)) | {kind} | {a for k in typing.get_args(kind) for a in typing.get_args(k)}
            if parts & {int, float} or f.name.startswith("limit_"):
                found.add(prefix + f.name)
    return found


def test_every_numeric_field_of_every_schema_has_its_range():
    missing = numeric_fields() - set(RANGES) - CROSS_FIELD
    assert not missing, f"numeric fields without a range in ssrl.validate.RANGES: {sorted(missing)}"
    assert set(RANGES) <= numeric_fields()  # no range for a field that does not exist


CLI = [
    (["predictor.lr_scale=-1"], "predictor.lr_scale=-1.0: must be > 0"),
    (["trainer.precision=bf16-true"], "trainer.precision=bf16-true is not supported: weights held in 16 bits;"),
]


@pytest.mark.parametrize(("args", "line"), CLI, ids=[" ".join(a) for a, _ in CLI])
def test_a_bad_value_on_the_command_line_fails_before_any_work(tmp_path, monkeypatch, capsys, args, line):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", "data=synthetic", *SDMI, *args])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ssrl-train: error: {line}")
    assert not (tmp_path / "outputs").exists()
