"""The LightningDataModule: uint8 batches (augmented later, on the device) or per-sample view pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssrl.data.datasets import load_splits
from ssrl.data.splits import ImageSet, Part, Splits
from ssrl.data.views import per_sample_transform


class InMemoryBatches:
    """Batches of an in-memory ImageSet, held on one device and indexed there.

    Every pass over the loader is a new epoch, whose order is a permutation drawn from (seed, epoch),
    so it does not depend on what ran before; with several processes each takes its own slice of every
    global batch. ``max_batches`` cuts an epoch short (the Trainer's limit_train_batches).

    Resumable mid-epoch: ``state_dict`` / ``load_state_dict`` (through SSLDataModule's, which
    Lightning saves in and restores from every checkpoint), and the next pass continues that epoch. As
    Lightning fetches one batch ahead, the position saved is the number of batches it has processed
    (``processed``), not the number handed out.
    """

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
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.max_batches: int | None = None
        self.processed: Callable[[], int] | None = None  # the trainer's count of batches done this epoch
        self.epoch, self.served, self._begun, self._resume = 0, 0, False, False

    def __len__(self) -> int:
        per_step, n = self.batch_size * self.world_size, len(self.labels)
        full = n // per_step if self.drop_last else -(-n // per_step)
        return full if self.max_batches is None else min(full, self.max_batches)

    def _order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(len(self.labels), device=self.images.device)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.labels), generator=g).to(self.images.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if not self._resume or self.served >= len(self):
            self.epoch, self.served = (self.epoch + 1 if self._begun else 0), 0
        self._begun, self._resume = True, False
        order, per_step = self._order(), self.batch_size * self.world_size
        while self.served < len(self):
            start = self.served * per_step + self.rank * self.batch_size
            index = order[start : start + self.batch_size]
            self.served += 1
            yield self.images[index], self.labels[index]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "served": self.processed() if self.processed else self.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.served, self._begun, self._resume = state["epoch"], state["served"], True, True


class ViewPairs(Dataset):
    """Per-sample pipeline: item i -> ((view A, view B), label), made by torchvision in the workers."""

    def __init__(self, part: Part, transforms: tuple[Any, Any]) -> None:
        self.part, self.transforms = part, transforms

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, i: int) -> tuple[tuple[Tensor, Tensor], int]:
        image, label = (
            (self.part.images[i], int(self.part.labels[i])) if isinstance(self.part, ImageSet) else self.part[i]
        )
        return (self.transforms[0](image), self.transforms[1](image)), label


class _Indexed(Dataset):
    def __init__(self, data: ImageSet) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.data.images[i], int(self.data.labels[i])


class SSLDataModule(pl.LightningDataModule):
    """Train batches for the paradigm, val batches for the per-epoch diagnostics, clean batches of
    every split for the probes."""

    def __init__(self, cfg: Any, seed: int) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.splits: Splits | None = None
        self._train_batches: InMemoryBatches | None = None
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

    def _loader(self, part: Part, train: bool) -> Any:
        """Shuffled training batches, or fixed-order held-out batches; both of data.batch_size, the N
        at which the MI is estimated."""
        if isinstance(part, ImageSet) and (not train or self.cfg.pipeline == "batched"):
            trainer = self.trainer if train else None
            rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
            batches = InMemoryBatches(
                part,
                self.cfg.batch_size,
                shuffle=train,
                drop_last=train,
                seed=self.seed,
                device=self._device(),
                rank=rank,
                world_size=world,
            )
            if trainer is not None:
                batches.processed = lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed
                # Lightning's own rule for limit_train_batches, applied by the loader
                limit = trainer.limit_train_batches
                batches.max_batches = min(len(batches), limit) if isinstance(limit, int) else int(len(batches) * limit)
            return batches
        return self._torch_loader(_Indexed(part) if isinstance(part, ImageSet) else part, train)

    def _torch_loader(self, dataset: Dataset, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> Any:
        self.setup()
        if self.cfg.pipeline == "per_sample":
            size, channels = self.cfg.image_size, self.cfg.channels
            transforms = tuple(per_sample_transform(self.cfg.views, size, channels, i) for i in (0, 1))
            return self._torch_loader(ViewPairs(self.splits.train, transforms), train=True)
        loader = self._loader(self.splits.train, train=True)
        if isinstance(loader, InMemoryBatches):
            self._train_batches = loader
            if self._resume_state is not None:
                loader.load_state_dict(self._resume_state)
        return loader

    def val_dataloader(self) -> Any:
        self.setup()
        return self._loader(self.splits.val, train=False)

    def eval_loaders(self) -> dict[str, Any]:
        """Fixed-order loaders for the probes and kNN: "labeled" fits them, "val" and "test" score them."""
        self.setup()
        return {name: self._loader(getattr(self.splits, name), train=False) for name in ("labeled", "val", "test")}
