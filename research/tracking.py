"""Real-time interest tracking: events arrive one at a time per user; the tracker keeps every
user's state and returns the current next-category distribution and a migration flag.

    tracker = InterestTracker.from_run("outputs/<run>")          # a finished research.train run
    out = tracker.update(users, items, behaviors)                # tensors of dense ids, time order

Recurrent models (those with `step`, e.g. GRU4Rec/LSTM) update a hidden state per user in
O(1) per event; other models re-encode a bounded window of each user's last `max_len` events,
which the tracker keeps for every model. `swap(module)` puts a model updated on new data (a
research.windows update) into the running tracker without losing any user: a recurrent model's
states are re-encoded from each user's window (the old model's states mean nothing to the new
weights), a window model simply reads the windows with the new weights. The distribution is
the one evaluation scores (`SequenceRecModule.next_category_log_probs`), so a tracked prediction
equals the evaluated one. A user is flagged as migrating when the most-likely category changes
and the new one leads the old by at least `min_margin` probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from research.data.sequences import trim_padding
from research.models import Recurrent, latest_output
from research.module import SequenceRecModule


class UserSlots:
    """Any int64 user key -> a dense slot, vectorised (sorted keys + searchsorted); unseen keys
    get the next free slots."""

    def __init__(self):
        self.keys = torch.empty(0, dtype=torch.long)
        self.slots = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.keys.numel()

    def lookup(self, users: torch.Tensor) -> torch.Tensor:
        unique = torch.unique(users)
        pos = torch.searchsorted(self.keys, unique)
        known = (pos < self.keys.numel()) & (self.keys[pos.clamp(max=max(self.keys.numel() - 1, 0))] == unique) \
            if self.keys.numel() else torch.zeros_like(unique, dtype=torch.bool)
        new = unique[~known]
        if new.numel():
            keys = torch.cat([self.keys, new])
            slots = torch.cat([self.slots, torch.arange(len(self), len(self) + new.numel())])
            order = torch.argsort(keys)
            self.keys, self.slots = keys[order], slots[order]
        return self.slots[torch.searchsorted(self.keys, users)]


def occurrence(slots: torch.Tensor) -> torch.Tensor:
    """For each event, how many earlier events of the same user are in this batch."""
    order = torch.argsort(slots, stable=True)
    sorted_slots = slots[order]
    first = torch.ones_like(sorted_slots, dtype=torch.bool)
    first[1:] = sorted_slots[1:] != sorted_slots[:-1]
    index = torch.arange(slots.numel())
    group_start = torch.cummax(torch.where(first, index, 0), 0).values
    out = torch.empty_like(slots)
    out[order] = index - group_start
    return out


@dataclass
class TrackerOutput:
    distribution: torch.Tensor  # (N, C+1) P(next category) after each event; column 0 is padding
    top: torch.Tensor  # (N,) most likely category (dense id)
    confidence: torch.Tensor  # (N,) its probability
    migrated: torch.Tensor  # (N,) the most likely category changed with at least min_margin


class InterestTracker:
    WINDOW_DTYPE = torch.int32  # every user's last max_len events: half int64's memory; cast back when read

    def __init__(self, module: SequenceRecModule, max_len: int, min_margin: float = 0.1):
        self.max_len, self.min_margin = max_len, min_margin
        self._use(module)
        self.slots = UserSlots()
        self.top = torch.zeros(0, dtype=torch.long)
        self.window_items = torch.zeros(0, max_len, dtype=self.WINDOW_DTYPE)
        self.window_behaviors = torch.zeros(0, max_len, dtype=self.WINDOW_DTYPE)
        self.state: tuple[torch.Tensor, ...] | None = None  # recurrent: (layers, slots, H) per tensor

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", min_margin: float = 0.1):
        """A finished run's tracker (research.runs.load_run) and the run's datamodule (for its
        id maps and events)."""
        from research.runs import load_run

        module, datamodule = load_run(run_dir, checkpoint)
        return cls(module, datamodule.max_len, min_margin), datamodule

    def _use(self, module: SequenceRecModule) -> None:
        self.module = module.eval()
        self.model = module.model
        self.item_category = module.item_category.cpu()
        self.recurrent = isinstance(self.model, Recurrent)

    @torch.no_grad()
    def swap(self, module: SequenceRecModule) -> None:
        """Continue with `module` (the same catalogue, new weights): every user keeps their events
        (the last `max_len`), their state is rebuilt under the new model, and their current top
        category becomes the new model's, so the swap itself flags no migration."""
        self._use(module)
        self.state = None
        seen = torch.nonzero(self.window_items[:, -1] > 0).squeeze(1)  # windows end at the latest event
        if seen.numel() == 0:
            return
        if self.recurrent:  # one step per window position; padding leaves a user's state as it is
            for t in range(self.max_len):
                users = seen[self.window_items[seen, t] > 0]
                if users.numel():
                    h = self._step(users, self.window_items[users, t].long(), self.window_behaviors[users, t].long())
        else:
            h = self._read_windows(seen)
        self.top[seen] = self.module.next_category_log_probs(h).argmax(1)  # h: every seen user's last output

    def _grow(self, size: int) -> None:
        extra = size - self.top.numel()
        if extra <= 0:
            return
        self.top = torch.cat([self.top, torch.zeros(extra, dtype=torch.long)])
        pad = torch.zeros(extra, self.max_len, dtype=self.WINDOW_DTYPE)
        self.window_items = torch.cat([self.window_items, pad])
        self.window_behaviors = torch.cat([self.window_behaviors, pad])

    def _step(self, slots: torch.Tensor, items: torch.Tensor, behaviors: torch.Tensor) -> torch.Tensor:
        """Recurrent models: advance these users' states by one event -> (n, H) outputs."""
        batch = {"items": items[:, None], "categories": self.item_category[items][:, None],
                 "behaviors": behaviors[:, None]}
        if self.state is None:
            h, state = self.model.step(batch, None)
            states = state if isinstance(state, tuple) else (state,)
            self.state = tuple(s.new_zeros(s.size(0), self.top.numel(), s.size(2)) for s in states)
        else:
            if self.state[0].size(1) < self.top.numel():  # room for new users: zero state = no events
                grow = self.top.numel() - self.state[0].size(1)
                self.state = tuple(torch.cat([s, s.new_zeros(s.size(0), grow, s.size(2))], 1) for s in self.state)
            previous = tuple(s[:, slots] for s in self.state)
            h, state = self.model.step(batch, previous if len(previous) > 1 else previous[0])
            states = state if isinstance(state, tuple) else (state,)
        for full, new in zip(self.state, states):
            full[:, slots] = new
        return h

    def _read_windows(self, slots: torch.Tensor) -> torch.Tensor:
        """Window models: encode these users' windows -> (n, H) outputs after their last event."""
        items, behaviors = self.window_items[slots].long(), self.window_behaviors[slots].long()
        batch = trim_padding({"items": items, "categories": self.item_category[items], "behaviors": behaviors},
                             self.max_len)
        return latest_output(self.model, batch)

    def _encode(self, slots: torch.Tensor, items: torch.Tensor, behaviors: torch.Tensor) -> torch.Tensor:
        """Advance these users (each once) by their event -> (n, H) model output after it."""
        stored = self.WINDOW_DTYPE
        self.window_items[slots] = torch.cat([self.window_items[slots, 1:], items[:, None].to(stored)], 1)
        self.window_behaviors[slots] = torch.cat([self.window_behaviors[slots, 1:], behaviors[:, None].to(stored)], 1)
        return self._step(slots, items, behaviors) if self.recurrent else self._read_windows(slots)

    @torch.no_grad()
    def update(self, users: torch.Tensor, items: torch.Tensor, behaviors: torch.Tensor | None = None) -> TrackerOutput:
        """Events in time order (a user may occur several times: processed in order)."""
        behaviors = torch.zeros_like(items) if behaviors is None else behaviors
        slots = self.slots.lookup(users)
        self._grow(len(self.slots))
        n = users.numel()
        distribution = torch.zeros(n, self.module.num_categories + 1)
        migrated = torch.zeros(n, dtype=torch.bool)
        rounds = occurrence(slots)
        for r in range(int(rounds.max()) + 1 if n else 0):  # one round per repeat of a user, not per event
            idx = torch.nonzero(rounds == r).squeeze(1)
            s = slots[idx]
            h = self._encode(s, items[idx], behaviors[idx])
            probs = self.module.next_category_log_probs(h).exp()
            top = probs.argmax(1)
            before = self.top[s]
            lead = probs.gather(1, top[:, None]).squeeze(1) - probs.gather(1, before[:, None]).squeeze(1)
            migrated[idx] = (before > 0) & (top != before) & (lead >= self.min_margin)
            distribution[idx] = probs
            self.top[s] = top
        top = distribution.argmax(1)
        return TrackerOutput(distribution, top, distribution.gather(1, top[:, None]).squeeze(1), migrated)
