"""Per-user event sequences kept as flat tensors plus offsets (CSR), and the two datasets that
cut batches out of them with vectorised gathers (no Python object per event or per user).

Batches are left-padded to `max_len` with 0 (the padding id of items, categories, behaviours).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import polars as pl
import torch
from torch.utils.data import Dataset

from research.data.splits import event_positions, offsets_of


@dataclass
class EventStore:
    """All events sorted by (user, time); user u owns flat rows offsets[u] .. offsets[u+1]-1."""

    items: torch.Tensor  # (E,)
    categories: torch.Tensor  # (E,)
    behaviors: torch.Tensor  # (E,) 0 when the source has none
    timestamps: torch.Tensor  # (E,)
    states: torch.Tensor | None  # (E,) true hidden category (simulator only)
    offsets: torch.Tensor  # (U + 1,)

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @classmethod
    def from_events(cls, events: pl.DataFrame, num_users: int) -> EventStore:
        def column(name: str) -> torch.Tensor:
            return torch.from_numpy(events[name].cast(pl.Int64).to_numpy().copy())

        users = column("user")
        offsets = offsets_of(torch.bincount(users, minlength=num_users))
        zeros = torch.zeros(events.height, dtype=torch.long)
        return cls(
            items=column("item"),
            categories=column("category"),
            behaviors=column("behavior") if "behavior" in events.columns else zeros,
            timestamps=column("timestamp"),
            states=column("state") if "state" in events.columns else None,
            offsets=offsets,
        )

    @property
    def device(self) -> torch.device:
        return self.items.device

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every field that holds a tensor (states is None outside the simulator)."""
        return {name: value for name, value in vars(self).items() if value is not None}

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors().values())

    def to(self, device: torch.device) -> EventStore:
        """The same events held on `device` (batches are then cut there: no host copy per batch)."""
        return replace(self, **{name: t.to(device) for name, t in self.tensors().items()})

    def gather(self, users: torch.Tensor, ends: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat indices of each user's `width` events before position `ends` (exclusive),
        left-padded: returns (index (B, width), valid (B, width))."""
        start = self.offsets[users]
        index = (start + ends - width).unsqueeze(1) + torch.arange(width, device=start.device)
        valid = index >= start.unsqueeze(1)
        return index.clamp(min=0), valid

    def take(self, field: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return torch.where(valid, field[index], 0)


# (B, L) tensors aligned with the input window; everything else in a batch is per row or flat
SEQUENCE_KEYS = ("items", "categories", "behaviors", "target_items", "target_categories", "target_behaviors")


def trim_padding(batch: dict, width: int) -> dict:
    """Drop leading columns that are padding in every row. Models are padding-invariant, so
    this changes no output; it only stops spending compute on padding."""
    keep = max(1, int((batch["items"] > 0).sum(1).max()))
    if keep < width:
        for key in SEQUENCE_KEYS:
            if key in batch:
                batch[key] = batch[key][:, width - keep:]
    return batch


def history_width(positions: torch.Tensor, max_len: int) -> int:
    """Columns of a batch of histories (the events before each row's `positions`, at most
    `max_len`) that are not padding in every row: trim_padding's width, read from the host's
    positions, so a batch cut on a GPU needs no sync."""
    return max(1, int(positions.clamp(max=max_len).max()))


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch's small per-row table on `device` without a device sync: a blocking copy to a
    GPU waits for its queue, and so may an asynchronous one from pageable memory; from pinned
    memory it does not (torch's pinned-block cache keeps the block until the copy is done)."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def passthrough(batch: dict) -> dict:
    """The datasets build whole batches in `__getitems__`; the DataLoader must not re-collate."""
    return batch


class BatchDataset(Dataset):
    """A dataset that builds whole batches with tensor ops in `__getitems__`. Indexing it with
    a list (or tensor) of rows builds that batch: the training loader draws whole batches (see
    TrainBatches). Its own row tables stay on the host; its events live in `store`."""

    store: EventStore

    def __getitem__(self, rows: list[int] | torch.Tensor) -> dict:
        return self.__getitems__(rows)

    def __getitems__(self, rows: list[int] | torch.Tensor) -> dict:
        raise NotImplementedError

    def reading(self, store: EventStore) -> BatchDataset:
        """The same rows cut from `store`, the same events held elsewhere (on the training
        device: research.data.datamodule, `datamodule.resident`)."""
        moved = copy.copy(self)
        moved.store = store
        return moved


class TrainWindows(BatchDataset):
    """One row per window of at most `max_len` training transitions (SASRec-style: the input
    at every position predicts the next event). A user's training targets are cut from the end
    into consecutive windows, so every training target is used exactly once per epoch. The
    targets are the positions `train_from` (default 1) .. train_end-1; earlier events are input
    only (an update that trains on the new events, with the old ones as history)."""

    def __init__(self, store: EventStore, train_end: torch.Tensor, max_len: int,
                 train_from: torch.Tensor | None = None):
        self.store, self.max_len = store, max_len
        n = train_end.clamp(min=0)
        first = torch.ones_like(n) if train_from is None else train_from.clamp(min=1)
        # each row: its user, the exclusive end of its events, its first target position
        self.users, self.ends, self.first = self.cut(n, first, max_len)

    @staticmethod
    def cut(n: torch.Tensor, first: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users' training targets first..n-1 -> rows: windows of max_len targets from the end."""
        windows = torch.div((n - first).clamp(min=0) + max_len - 1, max_len, rounding_mode="floor")
        users, k = event_positions(offsets_of(windows))
        return users, n[users] - k * max_len, first[users]

    def __len__(self) -> int:
        return self.users.numel()

    def __getitems__(self, indices: list[int] | torch.Tensor) -> dict:
        rows = torch.as_tensor(indices)
        # input columns that are not padding in every row (trim_padding's width), from the host
        # tables: no device sync per batch where the events live on the device
        width = int(torch.clamp(self.ends[rows] - 1, max=self.max_len).max())
        s = self.store
        users, ends, first = to_device(torch.stack([self.users[rows], self.ends[rows], self.first[rows]]), s.device)
        index, valid = s.gather(users, ends, width + 1)
        items = s.take(s.items, index, valid)
        categories = s.take(s.categories, index, valid)
        behaviors = s.take(s.behaviors, index, valid)
        # the first event of a sequence is never a target, nor an event before train_from
        position = ends.unsqueeze(1) - width + torch.arange(width, device=s.device)
        target = (items[:, :-1] > 0) & (position >= first.unsqueeze(1))
        return {
            "items": items[:, :-1],
            "categories": categories[:, :-1],
            "behaviors": behaviors[:, :-1],
            "target_items": torch.where(target, items[:, 1:], 0),
            "target_categories": torch.where(target, categories[:, 1:], 0),
            "target_behaviors": torch.where(target, behaviors[:, 1:], 0),  # for models that re-cut windows
        }

    def lengths(self) -> torch.Tensor:
        """(rows,) number of training targets of each window (also its length for bucketing)."""
        return torch.minimum(self.ends - self.first, torch.tensor(self.max_len))

    def targets(self) -> torch.Tensor:
        """(rows,) training targets of each window (what a batch counts in `datamodule.batch_unit=targets`)."""
        return self.lengths()

    def num_targets(self) -> int:
        """Training targets over all windows (the per-target loss divisor's numerator)."""
        return int(self.targets().sum())


class TrainPrefixes(TrainWindows):
    """One row per training target, its input the (at most `max_len`) events before it: the
    training examples of RecBole's SASRec and GRU4Rec (its prefix augmentation) and of BSARec,
    where TrainWindows has one row per window with a target at every position. Each target's
    history is encoded anew (with its own dropout draw): a user of n targets costs the encoder
    about n / 2 times the positions of windows (up to max_len times on long histories); the
    targets are the same. Cut as windows that end at the target and whose only target is their
    last position."""

    @staticmethod
    def cut(n: torch.Tensor, first: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users' training targets first..n-1 -> rows: one per target, ending at it."""
        users, k = event_positions(offsets_of((n - first).clamp(min=0)))
        target = first[users] + k
        return users, target + 1, target

    def lengths(self) -> torch.Tensor:
        """(rows,) input events of each row (for length bucketing)."""
        return torch.clamp(self.ends - 1, max=self.max_len)

    def targets(self) -> torch.Tensor:
        return torch.ones_like(self.ends)


class EvalTargets(BatchDataset):
    """One row per (user, position) target; the input is the `max_len` events before it.

    Also carries what evaluation needs and the model must never see: the user's full history
    before the target (for masking already-seen items) and whether the target's category
    occurred in the last `slice_window` events (`stay`) or not (`shift`)."""

    def __init__(self, store: EventStore, targets: torch.Tensor, max_len: int, slice_window: int = 5):
        self.store, self.max_len, self.slice_window = store, max_len, slice_window
        # rows ordered by window length, so batches trim to little padding (metrics ignore order)
        order = torch.argsort(targets[:, 1].clamp(max=max_len), stable=True)
        self.users, self.positions = targets[order, 0].contiguous(), targets[order, 1].contiguous()

    def __len__(self) -> int:
        return self.users.numel()

    def __getitems__(self, indices: list[int] | torch.Tensor) -> dict:
        rows = torch.as_tensor(indices)
        # widths and sizes from the host tables: no device sync per batch (see TrainWindows)
        positions_host = self.positions[rows]
        events = int(positions_host.sum())
        s = self.store
        users, positions = to_device(torch.stack([self.users[rows], positions_host]), s.device)
        index, valid = s.gather(users, positions, history_width(positions_host, self.max_len))
        target = s.offsets[users] + positions
        recent_index, recent_valid = s.gather(users, positions, self.slice_window)
        recent = s.take(s.categories, recent_index, recent_valid)
        target_category = s.categories[target]
        # full history (not only the window) for masking: rows repeated by history length
        history_rows = torch.repeat_interleave(torch.arange(rows.numel(), device=s.device), positions,
                                               output_size=events)
        history_flat = torch.arange(events, device=s.device) - torch.repeat_interleave(
            torch.cumsum(positions, 0) - positions, positions, output_size=events
        )
        history_flat = history_flat + s.offsets[users][history_rows]
        batch = {
            "items": s.take(s.items, index, valid),
            "categories": s.take(s.categories, index, valid),
            "behaviors": s.take(s.behaviors, index, valid),
            "user": users,
            "target_item": s.items[target],
            "target_category": target_category,
            "is_shift": ~(recent == target_category.unsqueeze(1)).any(1),
            "history": torch.stack([history_rows, s.items[history_flat]]),
            "history_time": s.timestamps[history_flat],  # the clock of each history event (the oracle's)
            "target_time": s.timestamps[target],
            "target_position": positions,  # with "user", locates the target (history-feature models)
        }
        if s.states is not None:  # simulator truth, for measures of migration (never a model input)
            batch["target_state"] = s.states[target]
            batch["previous_state"] = torch.where(positions > 0, s.states[(target - 1).clamp(min=0)], 0)
        return batch


class TrainBatches(torch.utils.data.Sampler):
    """Training batches, drawn anew every epoch from `seed` and the epoch number.

    Each element is a whole batch (a list of rows): the DataLoader takes this as its `sampler`
    with `batch_size=None`, which is where Lightning finds it and calls `set_epoch` before every
    epoch (it never looks inside a `batch_sampler`). With `bucket_batches` > 0, rows are
    shuffled, cut into chunks of `bucket_batches` batches, each chunk sorted by length and
    batched, and the batch order shuffled: batches of similar length, less padding. With 0,
    plain shuffled batches. Under DDP every rank draws the same schedule and takes every
    `world`-th batch, the schedule padded with its first batches so all ranks run the same
    number of steps.

    `batch_size` counts rows, or, given `targets` (each row's training targets), targets: the
    epoch's T targets are then cut into ceil(T / batch_size) batches of nearly equal targets
    (a row goes to the batch where its first target falls; rows are never split), the same
    number of batches every epoch. A batch of windows holds from one to `max_len` targets per
    window, so its targets vary with the lengths it happens to hold; counted in targets, a
    step sees the same amount of data whatever the lengths (as RecBole's batches of
    single-target prefixes)."""

    def __init__(self, lengths: torch.Tensor, batch_size: int, seed: int, bucket_batches: int = 50,
                 world: int = 1, rank: int = 0, targets: torch.Tensor | None = None):
        if batch_size < 1:
            raise ValueError(f"datamodule.batch_size must be >= 1, got {batch_size}")
        self.lengths, self.batch_size, self.seed, self.bucket_batches = lengths, batch_size, seed, bucket_batches
        self.world, self.rank = world, rank
        self.epoch = 0
        self.by_targets = targets is not None
        # what a batch's size counts, per row: 1 (rows) or the row's targets
        self.sizes = targets if self.by_targets else torch.ones_like(lengths)
        self.total = int(self.sizes.sum())
        self.num_batches = -(-self.total // batch_size)  # over all ranks, every epoch
        longest = int(targets.max()) if self.by_targets and self.total else 0
        if self.total < self.num_batches * longest:
            # a batch of fewer targets than the longest window would leave some batches empty
            raise ValueError(f"datamodule.batch_size={batch_size} targets: must hold the longest training window "
                             f"({longest} targets) in every batch; use at least {2 * longest}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.num_batches // self.world)

    def batches(self) -> list[torch.Tensor]:
        """This epoch's batches over all ranks, in schedule order."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.total == 0:  # no rows (or none with a target): split would give one empty batch
            return []
        order = torch.randperm(self.lengths.numel(), generator=g)
        if self.bucket_batches > 0:
            # each chunk of `bucket_batches` batches sorted by length, all at once: two stable
            # sorts give the order by (chunk, length)
            chunk = torch.div(exclusive_cumsum(self.sizes[order]), self.batch_size * self.bucket_batches,
                              rounding_mode="floor")
            by_length = torch.argsort(self.lengths[order], stable=True)
            order = order[by_length[torch.argsort(chunk[by_length], stable=True)]]
        if self.by_targets:
            # batch b holds the rows whose first target falls in [b T / n, (b + 1) T / n): with
            # every row shorter than T / n, each of the n batches gets at least one row
            batch = torch.div(exclusive_cumsum(self.sizes[order]) * self.num_batches, self.total, rounding_mode="floor")
            batches = order.split(torch.bincount(batch, minlength=self.num_batches).tolist())
        else:
            batches = order.split(self.batch_size)
        if self.bucket_batches <= 0:
            return list(batches)
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def __iter__(self):
        batches = self.batches()
        batches += batches[: len(self) * self.world - len(batches)]
        yield from batches[self.rank::self.world]


def exclusive_cumsum(sizes: torch.Tensor) -> torch.Tensor:
    """(n,) the sum of the sizes before each one."""
    return torch.cumsum(sizes, 0) - sizes
