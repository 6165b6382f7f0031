"""Structured-config schemas for every config group, registered with Hydra's ConfigStore.

Each YAML option in conf/ starts from its schema here (``defaults: [/schema/<group>/<schema>@_here_]``),
so a misspelled field or a value of the wrong type fails while the config is composed, before any work.
Rules that span fields are in ``ssrl.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class CriticKind(str, Enum):
    cosine = "cosine"
    dot = "dot"
    bilinear = "bilinear"


class TargetUpdate(str, Enum):
    gradient = "gradient"
    ema = "ema"


class Pipeline(str, Enum):
    batched = "batched"
    per_sample = "per_sample"


class Decode(str, Enum):
    auto = "auto"
    pil = "pil"
    cpu = "cpu"
    cuda = "cuda"


class OptimizerName(str, Enum):
    sgd = "sgd"
    adamw = "adamw"


class ProbeCriticKind(str, Enum):
    cosine = "cosine"
    projection = "projection"


class Schedule(str, Enum):
    cosine = "cosine"
    constant = "constant"


# ------------------------------------------------------------------------------------------- paradigm
@dataclass
class JMIConfig:
    name: str = "jmi"
    shared_encoder: bool = True


@dataclass
class SDMIConfig:
    name: str = "sdmi"
    e_steps: int = 1
    m_steps: int = 1
    refresh: bool = True
    target_update: TargetUpdate = TargetUpdate.gradient
    ema_momentum: float = 0.99
    #: None: the momentum stays at ema_momentum; a value: BYOL's cosine schedule from ema_momentum to it.
    ema_momentum_end: float | None = None
    shared_weights: bool = False
    symmetrize: bool = False


# ------------------------------------------------------------------------------------------ estimator
@dataclass
class EstimatorConfig:
    name: str = MISSING
    critic: CriticKind = CriticKind.cosine
    tau: float = 0.1


@dataclass
class InfoNCEConfig(EstimatorConfig):
    symmetric: bool = True
    same_view_negatives: bool = False


# ------------------------------------------------------------------------------------------- marginal
@dataclass
class MarginalConfig:
    name: str = MISSING
    weight: float = 1.0


@dataclass
class VICRegMarginalConfig(MarginalConfig):
    invariance: float = 25.0
    variance: float = 25.0
    covariance: float = 1.0


# ---------------------------------------------------------------------------------- predictor, backbone
@dataclass
class PredictorConfig:
    name: str = "none"
    hidden_dim: int = 512
    lr_scale: float = 1.0
    #: Keep the predictor's learning rate at optim.lr * lr_scale throughout (SimSiam), not on the schedule.
    fixed_lr: bool = False


@dataclass
class BackboneConfig:
    name: str = MISSING
    cifar_stem: bool = True
    in_channels: int = 3
    #: Channels of the first stage: 64 is torchvision's ResNet; 32 halves every stage (CPU-scale science).
    width: int = 64
    projector_hidden_dim: int = 512
    projector_dim: int = 128
    #: Linear layers in the projector (2: Linear-BN-ReLU-Linear; 3 adds a hidden Linear-BN-ReLU).
    projector_layers: int = 2
    #: BatchNorm (no affine) on the projector's output, as SimSiam's.
    projector_out_bn: bool = False


# ----------------------------------------------------------------------------------------------- data
@dataclass
class ViewsConfig:
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: list[float] = field(default_factory=lambda: [0.0, 0.0])
    solarize_p: list[float] = field(default_factory=lambda: [0.0, 0.0])
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])


@dataclass
class DataConfig:
    name: str = MISSING
    root: str | None = None
    download: bool = False
    batch_size: int = 256
    image_size: int = 32
    channels: int = 3
    pipeline: Pipeline = Pipeline.batched
    num_workers: int = 0
    views: ViewsConfig = field(default_factory=ViewsConfig)
    #: The validation split: this stratified fraction of the training data, drawn from split_seed.
    val_fraction: float = 0.1
    split_seed: int = 0


@dataclass
class SplitDataConfig(DataConfig):
    """Data sets without a test split of their own: a stratified test_fraction is drawn first."""

    test_fraction: float = 0.2


@dataclass
class SyntheticDataConfig(SplitDataConfig):
    num_samples: int = 512
    num_classes: int = 4
    noise: float = 0.1


@dataclass
class StyledDigitsConfig(SplitDataConfig):
    """The styled-digits benchmark (ssrl.data.styled_digits): digit size range, pixel noise, renders."""

    digit_min: int = 9
    digit_max: int = 12
    noise: float = 0.05
    renders: int = 1


@dataclass
class FolderDataConfig(DataConfig):
    #: Evaluation images: the short side resized to decode_size, then the centre image_size crop.
    decode_size: int = 72
    #: Training images: auto (cuda on a CUDA device, else pil), pil, cpu (decode_jpeg in the workers) or
    #: cuda (nvJPEG on the device, a batch at a time); see ssrl.data.folders.
    decode: Decode = Decode.auto


# -------------------------------------------------------------------------------------- optim, trainer
@dataclass
class OptimConfig:
    name: OptimizerName = OptimizerName.sgd
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    schedule: Schedule = Schedule.cosine


@dataclass
class TrainerConfig:
    """Lightning Trainer arguments, plus the speed switches channels_last and compile.

    precision "auto" takes the device's default (``ssrl.run.job.device_defaults``): bf16 autocast on a
    CUDA GPU of compute capability 8.0 or above, float32 on older GPUs and on the CPU. Weights held in
    16 bits (16-true, bf16-true) are refused before any work
    (ssrl.validate.PRECISIONS); summary.json's ``ran`` records the precision that ran (16-mixed on the CPU
    runs as bf16-mixed). channels_last is on for every device: on the CPU a styled-digits run
    took 9-16% less time than in the default layout (docs/benchmarks.md).
    max_steps counts batches trained, in both paradigms (SDMI's optimizer steps per batch do not count
    apart), and so do the learning-rate and EMA schedules, skipped non-finite updates included.
    accumulate_grad_batches: JMI only (SDMI alternates an E-step and an M-step on every batch).
    gradient_clip_val / gradient_clip_algorithm ("norm" or "value"): JMI through Lightning; SDMI clips
    the gradient of each of its updates, E-step and M-step alike (``SDMI._update``), after 16-mixed
    unscales it (``SDMI.on_before_optimizer_step``).
    """

    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"
    max_epochs: int = 30  # the default recipe's length, chosen on styled digits' val split (conf/data/)
    max_steps: int = -1
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 5
    deterministic: bool = False
    sync_batchnorm: bool = False
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    enable_progress_bar: bool = True
    channels_last: bool = True
    compile: bool = False


@dataclass
class EvalConfig:
    knn_k: int = 20
    knn_temperature: float = 0.07
    online_probe_lr: float = 0.1
    #: The collapse rule's constants, chosen on val at seeds 10-14 (+experiment=collapse_rule; docs/method.md).
    collapse_std_fraction: float = 0.1
    collapse_min_rank: float = 6.6
    #: The MI probe (ssrl.mi.probe; docs/method.md, "The MI probe"): measured before training, every n
    #: epochs and at the end; 0 turns it off.
    mi_probe_every_n_epochs: int = 15
    mi_probe_critic: ProbeCriticKind = ProbeCriticKind.cosine
    #: Images of the train split and of the val split the probe reads (a fixed seeded subsample of larger
    #: ones): 512 costs the cosine critic nothing measurable on the Gaussian bench (docs/method.md).
    mi_probe_max_images: int = 512
    #: The untrained baseline (ssrl.run.baseline): the probes over this many random initialisations,
    #: cached per data set and backbone in this folder (~ expanded) and shared by every run of a grid.
    baseline_inits: int = 10
    baseline_cache_dir: str = "~/.cache/ssrl/baselines"


@dataclass
class TrainConfig:
    paradigm: Any = MISSING
    estimator: Any = MISSING
    marginal: Any = MISSING
    predictor: Any = MISSING
    backbone: Any = MISSING
    data: Any = MISSING
    optim: Any = MISSING
    trainer: Any = MISSING
    #: {key: {_target_: a Lightning logger class, its arguments}} for each logger (ssrl.run.loggers).
    logger: Any = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    resume: bool = True
    #: Minutes of training between checkpoints, 0: after every batch (also written at the end, and on
    #: SIGTERM / SIGUSR1 / SIGUSR2); ssrl.run.callbacks.PeriodicCheckpoint.
    checkpoint_every_minutes: float = 10.0
    #: A non-finite training loss: "stop" the run with a clear error, or "skip" that update (counted).
    on_nonfinite_loss: str = "stop"
    #: What an experiment expects of this run ("learns" or "collapses"); ssrl-report shows it beside the outcome.
    expected: str | None = None
    #: The claim-deciding comparisons an experiment declares before it runs (ssrl.analysis.comparisons):
    #: each {name, tests, arm, control, metric, margin, arm_not_collapsed}; ssrl-report decides them.
    comparisons: list[Any] = field(default_factory=list)


SCHEMAS = {
    "paradigm": {"jmi": JMIConfig, "sdmi": SDMIConfig},
    "estimator": {"estimator": EstimatorConfig, "infonce": InfoNCEConfig},
    "marginal": {"marginal": MarginalConfig, "vicreg": VICRegMarginalConfig},
    "predictor": {"predictor": PredictorConfig},
    "backbone": {"backbone": BackboneConfig},
    "data": {
        "data": DataConfig,
        "split": SplitDataConfig,
        "synthetic": SyntheticDataConfig,
        "styled_digits": StyledDigitsConfig,
        "folder": FolderDataConfig,
    },
    "optim": {"optim": OptimConfig},
    "trainer": {"trainer": TrainerConfig},
}


def register_schemas() -> None:
    """Store the schemas as /schema/<group>/<name> and the top level as ``train_schema``."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)
