"""LightningDataModule: builds (or loads from cache) a dataset, applies a split, and serves
left-padded batches. `meta` carries what models need (counts from the training split only).

`examples` (the task: research/tasks.py) cuts the users' events into the rows of its
training, validation and test sets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader

from research.bounds import Between, Count, Seed
from research.data import cache
from research.data.schema import Builder, DatasetMeta
from research.data.sequences import EventStore, TrainBatches, passthrough
from research.data.splits import LeaveOneOut, Split, event_positions, training_target_events
from research.errors import IncompatibleConfig
from research.models import FitData

log = logging.getLogger(__name__)


class Examples(Protocol):
    """What a task's rows are (research.tasks): the training set's `lengths()` (for length
    bucketing), `targets()` (each row's targets, what `batch_unit=targets` counts) and
    `num_targets()` (the per-target loss divisor), and two evaluation sets."""

    def datasets(self, store: EventStore, split: Split, meta: DatasetMeta, max_len: int,
                 slice_window: int) -> tuple[Any, Any, Any]: ...


class SequenceDataModule(L.LightningDataModule):
    def __init__(
        self,
        builder: Builder,
        examples: Examples,
        cache_dir: str,
        max_len: Count = 50,
        batch_size: Count = 256,
        batch_unit: Literal["windows", "targets"] = "windows",
        eval_batch_size: Count = 512,
        min_user_events: Annotated[int, Between(low=2)] = 3,
        slice_window: Count = 5,
        split: Callable[..., Split] | None = None,
        bucket_by_length: bool = True,
        seed: Seed = 0,
        anonymize: bool = False,
        resident: bool = True,
        val_users: Count | None = None,
    ):
        super().__init__()
        self.builder, self.cache_dir = builder, cache_dir
        self.max_len, self.batch_size, self.eval_batch_size = max_len, batch_size, eval_batch_size
        self.batch_unit = batch_unit  # what batch_size counts: user windows or training targets
        self.min_user_events, self.slice_window = min_user_events, slice_window
        self.split_fn = split or LeaveOneOut()
        self.bucket_by_length, self.seed = bucket_by_length, seed
        self.examples = examples
        self.anonymize = anonymize  # raw user ids replaced by salted hashes in the processed data
        self.resident = resident
        self.val_users = val_users  # validate on this many users' targets (None: every user's)
        self.device_store: EventStore | None = None  # the events on the trainer's device, once copied
        self.data: cache.ProcessedData | None = None
        self.directory = None  # the cache entry, once prepare_data has ensured it

    def prepare_data(self) -> None:
        if self.directory is None:  # Lightning calls this before every fit/validate/test
            self.directory = cache.ensure_built(self.builder, self.cache_dir, self.min_user_events, self.anonymize)

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        # processes that skipped prepare_data (non-zero ranks) resolve the entry themselves
        if self.directory is None:
            self.directory = cache.ensure_built(self.builder, self.cache_dir, self.min_user_events, self.anonymize)
        self.data = cache.read(self.directory)
        log.info("%s: build counts (read, dropped, filled in): %s", self.builder.name, ", ".join(
            f"{name} {count}" for name, count in self.build_counts().items()))
        self.store = EventStore.from_events(self.data.events, self.data.meta["num_users"])
        self.use_split(self.split_fn(self.store.lengths, self.store.timestamps, self.store.offsets))

    def use_split(self, split: Split) -> None:
        """Cut the task's rows (and the training counts of `meta`) from this split: how a run
        over time windows moves from one window to the next without rebuilding the events."""
        self.split = self._sample_validation(split)
        self.meta = self._meta()
        self.train_set, self.val_set, self.test_set = self.examples.datasets(
            self.store, self.split, self.meta, self.max_len, self.slice_window)
        log.info(
            "%s: %d users, %d items, %d categories; %d train rows (%s), %d val / %d test targets",
            self.builder.name, self.store.lengths.numel(), self.meta.num_items, self.meta.num_categories,
            len(self.train_set), type(self.train_set).__name__, len(self.val_set), len(self.test_set),
        )
        self.counts = self._count_split()  # one pass per split: logged here, reported by the entry points
        log.info("%s: split counts: %s", self.builder.name,
                 ", ".join(f"{name} {count}" for name, count in self.counts.items()))

    def _sample_validation(self, split: Split) -> Split:
        """`val_users` users' validation targets (all of each one's), or every user's. A
        validation pass ranks all items for each of its targets, so on a log of a million users
        it costs far more than a training epoch, and early stopping needs only its trend. The
        users are drawn with a fixed seed, the same for every model and run seed, so the curves
        of a table stay comparable; the test set is never sampled. Counted in the split counts."""
        users = torch.unique(split.val[:, 0])
        if self.val_users is None or users.numel() <= self.val_users:
            return split
        sample = users[torch.randperm(users.numel(), generator=torch.Generator().manual_seed(0))[:self.val_users]]
        kept = torch.isin(split.val[:, 0], sample)
        return replace(split, val=split.val[kept], counts={
            **split.counts, "val_users_sampled": self.val_users, "val_targets_not_sampled": int((~kept).sum())})

    def split_counts(self) -> dict[str, int]:
        """What the split reports (a time window's bounds), and how many validation and test
        targets belong to users without a training event (cold) or are items that no training
        event has (unseen): kept and scored like the others, and counted here."""
        return dict(self.counts)

    def _count_split(self) -> dict[str, int]:
        s, split = self.store, self.split
        users, positions = event_positions(s.offsets)
        known = torch.zeros(self.meta.num_items + 1, dtype=torch.bool)
        known[s.items[positions < split.train_end[users]]] = True  # every event the model may learn from
        counts = dict(split.counts)
        for name, targets in (("val", split.val), ("test", split.test)):
            counts[f"{name}_targets"] = targets.size(0)
            counts[f"{name}_targets_of_cold_users"] = int((split.train_end[targets[:, 0]] == 0).sum())
            items = s.items[s.offsets[targets[:, 0]] + targets[:, 1]]
            counts[f"{name}_targets_of_unseen_items"] = int((~known[items]).sum())
        return counts

    def fit_data(self) -> FitData:
        """The events and labelled rows a model fitted outside gradient descent learns from."""
        train = torch.nonzero(training_target_events(self.store.offsets, self.split.train_end,
                                                      self.split.train_from)).squeeze(1)
        val = self.store.offsets[self.split.val[:, 0]] + self.split.val[:, 1]
        return FitData(self.data.events, self.data.users, self.store.offsets, self.store.categories, train, val)

    def build_counts(self) -> dict[str, int]:
        """Every count the build kept (events read, rows dropped and why, defaults filled in), shown
        on every run, also one that reuses the cache, and written to the run folder by train."""
        meta = self.data.meta
        counts = {**meta["report"], **meta.get("info", {})}
        return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}

    def _meta(self) -> DatasetMeta:
        m = self.data.meta
        items = self.data.items.sort("dense")
        item_category = torch.zeros(m["num_items"] + 1, dtype=torch.long)
        item_category[1:] = torch.from_numpy(items["category"].cast(int).to_numpy().copy())
        is_train_target = training_target_events(self.store.offsets, self.split.train_end, self.split.train_from)
        return DatasetMeta(
            name=self.builder.name,
            num_items=m["num_items"],
            num_categories=m["num_categories"],
            num_behaviors=m["num_behaviors"],
            item_category=item_category,
            train_item_counts=torch.bincount(self.store.items[is_train_target], minlength=m["num_items"] + 1),
            train_category_counts=torch.bincount(
                self.store.categories[is_train_target], minlength=m["num_categories"] + 1
            ),
            category_names=tuple(str(c) for c in self.data.categories.sort("dense")["raw"].to_list()),
            artefact_dir=Path(self.data.directory),
        )

    def _ranks(self) -> tuple[int, int]:
        """(world size, this process's rank); (1, 0) outside a distributed trainer."""
        return (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)

    def _on_device(self, dataset):
        """`dataset` reading its events from a copy on the trainer's device (`resident`): its
        batches are then cut there by gathers, and only a batch's row table (a few integers a
        row, through pinned memory, no sync) crosses from the host. One copy serves the three
        datasets; datasets whose batches need host work (research.data.ctr's negative sampler)
        keep theirs."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if not self.resident or device.type == "cpu":
            return dataset
        if self.device_store is None or self.device_store.device != device:
            gib = self.store.nbytes / 2**30
            try:
                self.device_store = self.store.to(device)
            except torch.OutOfMemoryError as err:
                raise IncompatibleConfig(f"datamodule.resident: the events ({gib:.2f} GiB) do not fit on {device}; "
                                         "datamodule.resident=false keeps them on the host") from err
            log.info("%s: events copied to %s (%.2f GiB, datamodule.resident)", self.builder.name, device, gib)
        return dataset.reading(self.device_store)

    def _eval_loader(self, dataset) -> DataLoader:
        # Batches are gathered in-process with tensor ops; worker processes would only add
        # thread contention on small machines. Under DDP each rank reads its own shard (the
        # trainer's use_distributed_sampler is off: see conf/trainer/ddp.yaml): every row
        # exactly once over all ranks (no padding copies), gathered by the metrics.
        world, rank = self._ranks()
        return DataLoader(self._on_device(dataset), batch_size=self.eval_batch_size,
                          sampler=EvalShard(len(dataset), world, rank),
                          collate_fn=passthrough, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        # Whole batches are the sampler's elements (batch_size=None): Lightning then finds it as
        # `dataloader.sampler` and calls its set_epoch, so every epoch draws new batches.
        return DataLoader(self._on_device(self.train_set), sampler=self._train_batches(*self._ranks()),
                          batch_size=None, collate_fn=passthrough, num_workers=0)

    def _train_batches(self, world: int = 1, rank: int = 0) -> TrainBatches:
        return TrainBatches(self.train_set.lengths(), self.batch_size, self.seed,
                            bucket_batches=50 if self.bucket_by_length else 0, world=world, rank=rank,
                            targets=self.train_set.targets() if self.batch_unit == "targets" else None)

    @property
    def targets_per_batch(self) -> float:
        """Mean number of training targets in one process's training batch (the per-target loss
        divisor). Counted over the batches of all ranks: DDP averages the ranks' gradients, so
        each rank divides by one batch's targets and the average equals one process's gradient
        on the global batch."""
        return float(self.train_set.num_targets()) / self._train_batches().num_batches

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)


class EvalShard(torch.utils.data.Sampler):
    """Rank r of w reads rows r, r + w, r + 2w, ...: every evaluation row exactly once, unlike
    DistributedSampler, which pads with copies and would count some targets twice."""

    def __init__(self, size: int, world: int, rank: int):
        self.rows = range(rank, size, world)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)
