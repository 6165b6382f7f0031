"""The MI probe during a run (``ssrl.mi.probe``): before training, every eval.mi_probe_every_n_epochs
epochs, and at the end, on the run's device.

Each measurement embeds one fixed view pair per image of a fixed seeded subsample of the train split and
of the val split (at most eval.mi_probe_max_images each; the same images and the same views at every
measurement, so the curve follows the encoder alone), with branch A and branch B as the critic sees
them, the model in eval mode (BatchNorm on its running statistics) and without gradients; then trains
a fresh critic on the train pairs and scores it on the val pairs (``mi_probe``), in batches of
N = min(data.batch_size, pairs of either split). Results go to the epoch's ``history`` entry as
``mi_probe: {"dv", "infonce"}`` (nats) with ``mi_probe_s`` (its seconds), and to the logger as
``val/mi_probe/<estimator>`` (TensorBoard: ``MI/probe/<estimator>``). Only the lead process measures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ssrl.data.module import worker_context
from ssrl.data.splits import ImageSet, Part, subset
from ssrl.data.views import seed_of
from ssrl.mi.probe import BUDGET, mi_probe

#: seed_of(run seed, VIEW_KEY, split, batch): the probe's views, apart from training's (key 0), the val
#: MI's (1), image folders' crops (2) and per-sample views (3).
VIEW_KEY = 4
SPLITS = {"train": 0, "val": 1}


def probe_indices(size: int, cap: int, seed: int) -> Tensor:
    """Sorted indices of a seeded subsample of ``cap`` of ``size`` images; all of them when size <= cap."""
    if size <= cap:
        return torch.arange(size)
    g = torch.Generator().manual_seed(seed_of(seed, VIEW_KEY, 99))
    return torch.randperm(size, generator=g)[:cap].sort().values


def image_batches(part: Part, index: Tensor, batch_size: int, num_workers: int = 0) -> Iterator[Tensor]:
    """uint8 image batches of ``part`` at ``index``, in order: sliced in memory, or through a DataLoader
    (image folders: their evaluation images, the short side resized and centre-cropped)."""
    if isinstance(part, ImageSet):
        for start in range(0, len(index), batch_size):
            yield part.images[index[start : start + batch_size]]
        return
    loader = DataLoader(
        subset(part, index.numpy()),
        batch_size=batch_size,
        num_workers=num_workers,
        multiprocessing_context=worker_context(num_workers),
    )
    for images, _ in loader:
        yield images


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Eval mode for every submodule and no gradients inside; each submodule's own mode restored after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.training = training


def view_pair_embeddings(module: Any, batches: Iterator[Tensor], seed: int, split: int) -> tuple[Tensor, Tensor]:
    """(a, b), (N, D) each: branch A's embedding of view A and branch B's of view B of every image,
    the views of batch i drawn from seed_of(seed, VIEW_KEY, split, i). Call inside ``frozen``."""
    a, b = [], []
    for i, images in enumerate(batches):
        g = torch.Generator(device=module.device).manual_seed(seed_of(seed, VIEW_KEY, split, i))
        xa, xb = (module._layout(x) for x in module.views(images.to(module.device), g))  # the run's memory layout
        a.append(module.branch_a(xa)[1].float())
        b.append(module.branch_b(xb).float())
    return torch.cat(a), torch.cat(b)


def measure(module: Any, splits: Any, cfg: Any) -> dict[str, float]:
    """The probe on ``module`` (an MIParadigm) with the train and val splits of ``splits``: {"dv", "infonce"}."""
    data, seed, pairs = cfg.data, cfg.seed, {}
    with frozen(module):
        for name, split in SPLITS.items():
            part = getattr(splits, name)
            index = probe_indices(len(part), cfg.eval.mi_probe_max_images, seed + split)
            batches = image_batches(part, index, data.batch_size, data.num_workers)
            pairs[name] = view_pair_embeddings(module, batches, seed, split)
    batch = min(data.batch_size, len(pairs["train"][0]), len(pairs["val"][0]))
    return mi_probe(pairs["train"], pairs["val"], batch, critic_name(cfg.eval), seed)


def critic_name(cfg_eval: Any) -> str:
    """eval.mi_probe_critic as a plain string (the schema holds it as an enum)."""
    kind = cfg_eval.mi_probe_critic
    return getattr(kind, "value", kind)


def protocol(cfg: Any) -> str:
    """The probe's protocol in one sentence, for summary.json."""
    e, b = cfg.eval, BUDGET
    return (
        f"nats: DV and symmetric InfoNCE of a {critic_name(e)} critic trained afresh on frozen embeddings of "
        f"one fixed view pair per image of <= {e.mi_probe_max_images} train images ({b.steps} Adam steps on "
        f"-InfoNCE, batches of N = min(data.batch_size={cfg.data.batch_size}, pairs), lr {b.lr_scale} for the "
        f"log-scale from 1/{b.init_temperature}, {b.lr_projection} for projections), scored on <= "
        f"{e.mi_probe_max_images} val images ({b.val_permutations} permutations in batches of N; InfoNCE <= "
        f"log N); before training, every {e.mi_probe_every_n_epochs} epochs and at the end; ssrl/mi/probe.py"
    )


class MIProbe(pl.Callback):
    """Runs ``measure`` after the held-out evaluations that are due: before training and after the last
    epoch (any validation outside fitting), and every ``every_n_epochs`` epochs; 0 turns it off."""

    def __init__(self, every_n_epochs: int) -> None:
        self.every = every_n_epochs
        self._pending: dict[str, Any] | None = None

    def due(self, trainer: pl.Trainer, module: Any) -> bool:
        if self.every <= 0:
            return False
        if trainer.state.fn != "fit":
            return True
        epochs = trainer.current_epoch + 1
        # the last epoch, by the rules Lightning stops on: max_epochs, or max_steps against global_step
        last = epochs >= trainer.max_epochs or 0 < trainer.max_steps <= trainer.global_step
        return epochs % self.every == 0 or last

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if not (trainer.is_global_zero and self.due(trainer, pl_module)):
            return
        started = time.perf_counter()
        result = measure(pl_module, trainer.datamodule.splits, pl_module.cfg)
        for name, value in result.items():
            pl_module.log(f"val/mi_probe/{name}", value, rank_zero_only=True)
        self._pending = {"mi_probe": result, "mi_probe_s": time.perf_counter() - started}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """After the module has written this evaluation's history entry (its epoch-end hook runs after
        the callbacks')."""
        if self._pending is not None:
            pl_module.history[-1].update(self._pending)
            self._pending = None
