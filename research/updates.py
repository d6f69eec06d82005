"""How a model follows drifting data from one time window to the next (split=time_window,
research.windows): before window i is evaluated, an update strategy says whether and how the
model is trained on what happened before t_i. Each is a documented policy:

- `frozen`: trained once, for window 0 (on the events before t_0), then never again;
- `retrain`: a new model for every window, trained from scratch on every event before t_i;
- `finetune`: window 0 as retrain; then the previous window's weights are trained for
  `epochs` epochs on the new events only (those after the previous update's training data),
  with the older events as their history;
- `replay`: as finetune, plus the whole past of a `replay_users` share of the users, drawn anew
  for every window (old targets mixed in against forgetting).

New item ids need no new rows: the item table is sized for every item of the log from the start
(ids only: a row stays at its initialisation until an update trains on the item, which is what
growing the table when the item arrives would give, without reallocating the optimiser state).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from research.bounds import Count, Fraction
from research.data.splits import Split


@dataclass(frozen=True)
class Step:
    """One update: `fresh` starts a new model; `train_from` (U,) is each user's first training
    target (None: all), `max_epochs` a fixed budget (None: the trainer's, with early stopping)."""

    fresh: bool
    train_from: torch.Tensor | None = None
    max_epochs: int | None = None

    def split(self, split: Split) -> Split:
        return replace(split, train_from=self.train_from)


class Update:
    def step(self, split: Split, previous: Split | None, seed: int) -> Step | None:
        """The update before the window of `split` is evaluated (None: evaluate the current
        weights as they are). `previous` is the split the last update trained on."""
        raise NotImplementedError


class Frozen(Update):
    def step(self, split, previous, seed):
        return Step(fresh=True) if previous is None else None


class Retrain(Update):
    def step(self, split, previous, seed):
        return Step(fresh=True)


@dataclass(frozen=True)
class Finetune(Update):
    epochs: Count = 3

    def step(self, split, previous, seed):
        if previous is None:
            return Step(fresh=True)
        return Step(fresh=False, train_from=self.first_new(split, previous, seed), max_epochs=self.epochs)

    def first_new(self, split: Split, previous: Split, seed: int) -> torch.Tensor:
        """Each user's first event after the previous update's training data."""
        return previous.train_end.clone()


@dataclass(frozen=True)
class Replay(Finetune):
    replay_users: Fraction = 0.2

    def first_new(self, split, previous, seed):
        first = super().first_new(split, previous, seed)
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(split.counts.get("window", 0)))
        replayed = torch.rand(first.numel(), generator=g) < self.replay_users
        return torch.where(replayed, 0, first)
