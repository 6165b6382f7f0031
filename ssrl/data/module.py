"""The LightningDataModule: uint8 batches (augmented later, on the device) or per-sample view pairs."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssrl.config import Decode
from ssrl.data.datasets import load_splits
from ssrl.data.folders import FolderCrops
from ssrl.data.splits import ImageSet, Part, Splits
from ssrl.data.views import per_sample_transform, seed_of


def worker_context(num_workers: int) -> str | None:
    """The start method of a DataLoader's workers: None (Python's default) for a plain process; "fork" in
    a worker of joblib's loky backend (hydra/launcher=local), whose own start method "loky" makes the
    DataLoader fail ("'Process' object has no attribute 'env'") and whose spawned children cannot find
    it; None without workers (the DataLoader refuses a start method then)."""
    method = multiprocessing.get_start_method(allow_none=True)
    if num_workers == 0 or method is None or method in multiprocessing.get_all_start_methods():
        return None
    return "fork"


class ResumableBatches:
    """Training batches in an order drawn from (seed, epoch), resumable mid-epoch; subclasses load them.

    Every pass over the loader is a new epoch, whose order is a permutation drawn from (seed, epoch),
    so it does not depend on what ran before; with several processes each takes its own slice of every
    global batch. ``max_batches`` cuts an epoch short (the Trainer's limit_train_batches).

    Resumable mid-epoch: ``state_dict`` / ``load_state_dict`` (through SSLDataModule's, which
    Lightning saves in and restores from every checkpoint), and the next pass continues that epoch. As
    Lightning fetches one batch ahead (and workers further), the position saved is the number of
    batches it has processed (``processed``), not the number handed out.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.size, self.batch_size, self.shuffle, self.drop_last, self.seed = size, batch_size, shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.max_batches: int | None = None
        self.processed: Callable[[], int] | None = None  # the trainer's count of batches done this epoch
        self.epoch, self.served, self._begun, self._resume = 0, 0, False, False

    def __len__(self) -> int:
        per_step, n = self.batch_size * self.world_size, self.size
        full = n // per_step if self.drop_last else -(-n // per_step)
        return full if self.max_batches is None else min(full, self.max_batches)

    def _order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=g)

    def _indices(self) -> Iterator[Tensor]:
        """This process's sample indices of the batches left in this epoch, from ``served`` on."""
        order, per_step = self._order(), self.batch_size * self.world_size
        for b in range(self.served, len(self)):
            start = b * per_step + self.rank * self.batch_size
            yield order[start : start + self.batch_size]

    def _load(self, batches: list[Tensor]) -> Iterator[Any]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        if not self._resume or self.served >= len(self):
            self.epoch, self.served = (self.epoch + 1 if self._begun else 0), 0
        self._begun, self._resume = True, False
        for batch in self._load(list(self._indices())):
            self.served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "served": self.processed() if self.processed else self.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.served, self._begun, self._resume = state["epoch"], state["served"], True, True


class InMemoryBatches(ResumableBatches):
    """Batches of an in-memory ImageSet, held on one device and indexed there."""

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(len(data), batch_size, shuffle, drop_last, seed, rank, world_size)
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)

    def _order(self) -> Tensor:
        """The epoch's order, moved to the images' device once per epoch: no batch copies its index."""
        return super()._order().to(self.images.device)

    def _load(self, batches: list[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        for index in batches:
            yield self.images[index], self.labels[index]


class _Pending:
    """A DataLoader's batch sampler that hands out whatever batches of keys its owner set last."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class DatasetBatches(ResumableBatches):
    """Batches of a Dataset through a DataLoader (workers and all) that reads the keys (epoch, index):
    each item draws its randomness from (seed, epoch, index), so a resumed epoch reads the same views.
    ``finish`` runs on each collated batch in the main process (decoding on the device, say)."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        num_workers: int,
        rank: int = 0,
        world_size: int = 1,
        collate: Callable | None = None,
        finish: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(len(dataset), batch_size, True, True, seed, rank, world_size)
        self.finish, self._pending = finish, _Pending()
        self.loader = DataLoader(
            dataset,
            batch_sampler=self._pending,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            multiprocessing_context=worker_context(num_workers),
            pin_memory=torch.cuda.is_available(),
            collate_fn=collate,
        )

    def _load(self, batches: list[Tensor]) -> Iterator[Any]:
        self._pending.batches = [[(self.epoch, i) for i in index.tolist()] for index in batches]
        for batch in self.loader:
            yield self.finish(batch) if self.finish is not None else batch


class ViewPairs(Dataset):
    """Per-sample pipeline: key (epoch, i) -> ((view A, view B), label), made by torchvision in the
    workers. The transforms draw from torch's generator, seeded from (seed, epoch, i) for the item (and
    restored after), so the views do not depend on the worker, the order or a resume. Image folders
    give the whole image (the crop is drawn from it)."""

    def __init__(self, part: Part, transforms: tuple[Any, Any], seed: int) -> None:
        self.part, self.transforms, self.seed = part, transforms, seed

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, key: tuple[int, int]) -> tuple[tuple[Tensor, Tensor], int]:
        epoch, i = key
        if isinstance(self.part, ImageSet):
            image, label = self.part.images[i], int(self.part.labels[i])
        elif hasattr(self.part, "whole"):
            image, label = self.part.whole(i), self.part.samples[i][1]
        else:
            image, label = self.part[i]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(self.seed, 3, epoch, i))
            return (self.transforms[0](image), self.transforms[1](image)), label


class SSLDataModule(pl.LightningDataModule):
    """Train batches for the paradigm, val batches for the per-epoch diagnostics, clean batches of
    every split for the probes. Every training loader is resumable mid-epoch (ResumableBatches)."""

    def __init__(self, cfg: Any, seed: int) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.splits: Splits | None = None
        self._train_batches: ResumableBatches | None = None
        self._resume_state: dict[str, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position, saved in every checkpoint."""
        return self._train_batches.state_dict() if self._train_batches is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restored before the training loader exists (Lightning builds it while configuring the
        optimizers): kept until ``train_dataloader`` makes it."""
        self._resume_state = state or None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = load_splits(self.cfg)

    @property
    def num_classes(self) -> int:
        self.setup()
        return self.splits.num_classes

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def _ranks(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def decoder(self) -> str:
        """How an image folder's training images are decoded: data.decode, with auto resolved."""
        decode = Decode(self.cfg.get("decode", "pil"))
        if decode == Decode.auto:
            return "cuda" if self._device().type == "cuda" else "pil"
        return decode.value

    def _loader(self, part: Part, train: bool = False) -> Any:
        """Batches of data.batch_size, the N at which the MI is estimated: fixed-order held-out batches,
        or (``train``, in memory) this process's shuffled training batches."""
        if isinstance(part, ImageSet):
            rank, world = self._ranks() if train else (0, 1)
            return InMemoryBatches(
                part, self.cfg.batch_size, train, train, self.seed, self._device(), rank=rank, world_size=world
            )
        return DataLoader(
            part,
            batch_size=self.cfg.batch_size,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            multiprocessing_context=worker_context(self.cfg.num_workers),
            pin_memory=torch.cuda.is_available(),
        )

    def _training_batches(self) -> ResumableBatches:
        cfg, part = self.cfg, self.splits.train
        rank, world = self._ranks()
        common = {"batch_size": cfg.batch_size, "seed": self.seed, "rank": rank, "world_size": world}
        if cfg.pipeline == "per_sample":
            transforms = tuple(per_sample_transform(cfg.views, cfg.image_size, cfg.channels, i) for i in (0, 1))
            return DatasetBatches(ViewPairs(part, transforms, self.seed), num_workers=cfg.num_workers, **common)
        if isinstance(part, ImageSet):
            return self._loader(part, train=True)
        crops = FolderCrops(part, cfg.views, self.seed, self.decoder())
        finish = crops.finish(self._device())
        return DatasetBatches(crops, num_workers=cfg.num_workers, collate=crops.collate, finish=finish, **common)

    def train_dataloader(self) -> Any:
        self.setup()
        batches = self._training_batches()
        trainer = self.trainer
        if trainer is not None:
            batches.processed = lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed
            # Lightning's own rule for limit_train_batches, applied by the loader
            limit = trainer.limit_train_batches
            batches.max_batches = min(len(batches), limit) if isinstance(limit, int) else int(len(batches) * limit)
        self._train_batches = batches
        if self._resume_state is not None:
            batches.load_state_dict(self._resume_state)
        return batches

    def val_dataloader(self) -> Any:
        self.setup()
        return self._loader(self.splits.val)

    def eval_loaders(self) -> dict[str, Any]:
        """Fixed-order loaders for the probes and kNN: "labeled" fits them, "val" and "test" score them."""
        self.setup()
        return {name: self._loader(getattr(self.splits, name)) for name in ("labeled", "val", "test")}
