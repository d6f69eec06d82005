"""Evaluation protocols as pure functions of the per-user event counts (and timestamps).

A split says, for every user, how many leading events are training events (`train_end`;
training targets are the positions 1 .. train_end-1), and which (user, position) pairs are
validation and test targets. A target at position p is predicted from events 0 .. p-1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import torch

from research.bounds import NON_NEGATIVE, Count, Fraction, Seed


@dataclass(frozen=True)
class Split:
    train_end: torch.Tensor  # (U,) number of leading events usable for training
    val: torch.Tensor  # (K, 2) (user, position) of validation targets
    test: torch.Tensor  # (K', 2) (user, position) of test targets
    counts: dict[str, int] = field(default_factory=dict)  # facts the split reports (a window's bounds)
    # (U,) first position of each user that is a training target (None: 1); the events before it
    # are input only: an update that learns from the new events alone (research.updates)
    train_from: torch.Tensor | None = None


def time_at(ordered: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """The timestamps below which about `shares` of the events lie (event-count quantiles of the
    sorted `ordered`), read off the sort: torch.quantile refuses logs above 16M events."""
    return ordered[(shares * ordered.numel()).long().clamp(max=ordered.numel() - 1)]


def offsets_of(counts: torch.Tensor) -> torch.Tensor:
    """(U,) rows per user -> (U + 1,) where each user's rows start, and the end."""
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def event_positions(offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every flat event: its user and its 0-based position in that user's sequence."""
    lengths = offsets[1:] - offsets[:-1]
    users = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    return users, torch.arange(int(offsets[-1])) - offsets[users]


def training_target_events(offsets: torch.Tensor, train_end: torch.Tensor, train_from: torch.Tensor | None = None
                           ) -> torch.Tensor:
    """(E,) bool: the events that are training targets, positions max(1, train_from) ..
    train_end-1 of every user (a target needs an earlier event, and the split's held-out events
    are never trained on)."""
    users, positions = event_positions(offsets)
    first = 1 if train_from is None else train_from.clamp(min=1)[users]
    return (positions >= first) & (positions < train_end[users])


class LeaveOneOut:
    """Per user, by time: last event = test, second-to-last = validation, the rest train
    (SASRec / S3-Rec protocol). Users need at least 3 events."""

    consecutive_targets = False  # one validation and one test target per user

    def __call__(self, lengths: torch.Tensor, timestamps: torch.Tensor, offsets: torch.Tensor) -> Split:
        if bool((lengths < 3).any()):
            raise ValueError("leave-one-out split: every user needs >= 3 events (raise datamodule.min_user_events)")
        users = torch.arange(lengths.numel())
        return Split(
            train_end=lengths - 2,
            val=torch.stack([users, lengths - 2], dim=1),
            test=torch.stack([users, lengths - 1], dim=1),
        )


class GlobalTimeSplit:
    """One global clock: events before the `val_fraction + test_fraction` quantile of all
    timestamps train; events after it are validation, then test targets. Every target keeps
    its whole past as input (including earlier validation events, which precede it)."""

    consecutive_targets = True  # every event after the cut is a target

    def __init__(self, val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1):
        if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
            raise ValueError(f"split.val_fraction={val_fraction}, split.test_fraction={test_fraction}: "
                             "each must be > 0 and their sum < 1")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def __call__(self, lengths: torch.Tensor, timestamps: torch.Tensor, offsets: torch.Tensor) -> Split:
        shares = torch.tensor([1 - self.val_fraction - self.test_fraction, 1 - self.test_fraction], dtype=torch.float64)
        t_val, t_test = time_at(timestamps.sort().values, shares)
        users, positions = event_positions(offsets)
        train_end = torch.zeros_like(lengths).index_add_(0, users, (timestamps < t_val).long())
        eligible = positions >= 1  # a target needs at least one earlier event
        val = eligible & (timestamps >= t_val) & (timestamps < t_test)
        test = eligible & (timestamps >= t_test)
        pairs = torch.stack([users, positions], dim=1)
        return Split(train_end=train_end, val=pairs[val], test=pairs[test])


class UserHoldout:
    """Users, not events, are held out: a seeded `val_fraction` / `test_fraction` of users are
    never trained on, and every position p >= 1 of their sequences is a target (predicted from
    events 0 .. p-1). The protocol for whole-trajectory measures such as migration latency,
    and for generalisation to unseen users."""

    consecutive_targets = True  # every position of a held-out user is a target

    def __init__(self, val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1, seed: Seed = 0):
        if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
            raise ValueError(f"split.val_fraction={val_fraction}, split.test_fraction={test_fraction}: "
                             "each must be > 0 and their sum < 1")
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed

    def __call__(self, lengths: torch.Tensor, timestamps: torch.Tensor, offsets: torch.Tensor) -> Split:
        n = lengths.numel()
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        if n_val < 1 or n_test < 1 or n_val + n_test >= n:
            raise ValueError(f"user holdout split: {n} users cannot give {self.val_fraction} / "
                             f"{self.test_fraction} of them to validation / test and keep some for training")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        role = torch.zeros(n, dtype=torch.long)  # 0 train, 1 validation, 2 test
        role[order[:n_val]], role[order[n_val:n_val + n_test]] = 1, 2
        users, positions = event_positions(offsets)
        pairs = torch.stack([users, positions], dim=1)
        eligible = positions >= 1
        return Split(train_end=torch.where(role == 0, lengths, 0),
                     val=pairs[eligible & (role[users] == 1)], test=pairs[eligible & (role[users] == 2)])


class TimeWindows:
    """Global cut points t_0 < t_1 < ... < t_k over the whole log, for data whose interests drift.
    Window i holds the events in [t_i, t_{i+1}): they are its test targets, each predicted from
    the user's earlier events (those before t_i and those earlier in the window). A model for
    window i learns from the events before t_i only; the last `val_fraction` of them (by count)
    are its validation targets. The cuts are event-count quantiles: `start` of all events lie
    before t_0 and each window holds about (1 - start) / `windows` of them; `cut_times` gives them
    as timestamps instead. `window` picks the split the datamodule uses. Targets of users or items
    the model never learnt from are kept and counted (SequenceDataModule.split_counts)."""

    consecutive_targets = True  # every event of the window is a target

    def __init__(self, windows: Count = 8, start: Fraction = 0.5, cut_times: list[int] | None = None,
                 window: Annotated[int, NON_NEGATIVE] = 0, val_fraction: Fraction = 0.1):
        self.windows = len(cut_times) - 1 if cut_times else windows
        if cut_times is not None and (len(cut_times) < 2 or any(b <= a for a, b in zip(cut_times, cut_times[1:]))):
            raise ValueError(f"split.cut_times={list(cut_times)}: need at least two increasing timestamps")
        if window >= self.windows:
            raise ValueError(f"split.window={window}: the split has windows 0 .. {self.windows - 1}")
        self.start, self.cut_times, self.window, self.val_fraction = start, cut_times, window, val_fraction

    def cuts(self, ordered: torch.Tensor) -> torch.Tensor:
        """(windows + 1,) t_0 .. t_k of the sorted timestamps `ordered`; the last lies past the
        last event."""
        if self.cut_times is not None:
            return torch.tensor(self.cut_times, dtype=torch.long)
        shares = self.start + (1 - self.start) * torch.arange(self.windows + 1, dtype=torch.float64) / self.windows
        cuts = time_at(ordered, shares)
        cuts[-1] = ordered[-1] + 1
        if bool((cuts[1:] <= cuts[:-1]).any()):
            raise ValueError(f"time-window split: {self.windows} windows after the first {self.start:g} of the "
                             "events leave a window empty (too many events share a timestamp): use fewer windows")
        return cuts

    def __call__(self, lengths: torch.Tensor, timestamps: torch.Tensor, offsets: torch.Tensor) -> Split:
        ordered = timestamps.sort().values
        return self.split(self.window, self.cuts(ordered), ordered, timestamps, offsets)

    def splits(self, timestamps: torch.Tensor, offsets: torch.Tensor) -> Iterator[Split]:
        """Every window's split in turn, from one sort of the log's timestamps."""
        ordered = timestamps.sort().values
        cuts = self.cuts(ordered)
        for window in range(self.windows):
            yield self.split(window, cuts, ordered, timestamps, offsets)

    def split(self, window: int, cuts: torch.Tensor, ordered: torch.Tensor, timestamps: torch.Tensor,
              offsets: torch.Tensor) -> Split:
        begin, end = cuts[window], cuts[window + 1]
        past = timestamps < begin
        known = int(torch.searchsorted(ordered, begin))  # ordered[:known]: the events before the window, sorted
        if known == 0:
            raise ValueError(f"time-window split: no event before window {window} to learn from")
        val_from = ordered[min(int((1 - self.val_fraction) * known), known - 1)]
        users, positions = event_positions(offsets)
        learn = (timestamps < val_from).long()
        train_end = torch.zeros(offsets.numel() - 1, dtype=torch.long).index_add_(0, users, learn)
        eligible = positions >= 1  # a target needs at least one earlier event
        pairs = torch.stack([users, positions], dim=1)
        test = eligible & (timestamps >= begin) & (timestamps < end)
        return Split(train_end=train_end, val=pairs[eligible & (timestamps >= val_from) & past], test=pairs[test],
                     counts={"window": window, "window_start": int(begin), "window_end": int(end)})
