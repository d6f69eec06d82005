"""Examples of the DIEN-protocol click-through task (Zhou et al., AAAI 2019, "Deep Interest
Evolution Network for Click-Through Rate Prediction"): at a target position, the history
before it with the true next item (label 1) and one item the user never interacted with
(label 0). The negative carries its own category, so a model cannot tell the pair apart by
the category of the last event alone.

Negatives are drawn with vectorised rejection sampling against each user's whole item set
(every event, also the held-out ones): a handful of rounds over the rejected draws, never a
loop over users or events.
"""

from __future__ import annotations

import torch

from research.data.sequences import BatchDataset, EventStore, history_width
from research.data.splits import event_positions, training_target_events
from research.sampling import item_weights

MAX_ROUNDS = 50


class NegativeSampler:
    """Items a user never interacted with, drawn uniformly or by training popularity.

    `popularity` follows the data scripts of the DIEN paper (negatives drawn from the list of
    all reviewed items): it removes the shortcut of telling popular from unpopular items."""

    def __init__(self, store: EventStore, num_items: int, distribution: str, item_counts: torch.Tensor):
        self.num_items = num_items
        users, _ = event_positions(store.offsets)
        self.seen = torch.unique(users * (num_items + 1) + store.items)  # sorted (user, item) keys
        self.weights = item_weights(item_counts, distribution, "task.negatives").float()  # items 1..N

    def __call__(self, users: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) user ids -> (B,) item ids in 1..N that the user never interacted with."""
        items = torch.zeros_like(users)
        pending = torch.arange(users.numel())
        for _ in range(MAX_ROUNDS):
            if pending.numel() == 0:
                return items
            draws = torch.multinomial(self.weights, pending.numel(), replacement=True, generator=generator) + 1
            keys = users[pending] * (self.num_items + 1) + draws
            at = torch.searchsorted(self.seen, keys).clamp(max=self.seen.numel() - 1)
            seen = self.seen[at] == keys
            items[pending[~seen]] = draws[~seen]
            pending = pending[seen]
        if pending.numel():
            raise RuntimeError(f"ctr negatives: no unseen item found for {pending.numel()} users "
                               f"in {MAX_ROUNDS} rounds")
        return items


def training_targets(store: EventStore, train_end: torch.Tensor, train_from: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """(K, 2) (user, position) of every training target (splits.training_target_events)."""
    users, positions = event_positions(store.offsets)
    keep = training_target_events(store.offsets, train_end, train_from)
    return torch.stack([users[keep], positions[keep]], dim=1)


class CTRExamples(BatchDataset):
    """One row per (user, position) target; a batch of B rows yields 2B examples: the B
    positives, then the B negatives, each with the `max_len` events before the target.

    `eval_seed` fixes the negatives once (validation and test: every epoch, model and seed
    scores the same pairs); without it, negatives are redrawn at every batch from torch's
    global generator (training: a fresh negative each epoch, reproducible under a seed)."""

    def __init__(self, store: EventStore, targets: torch.Tensor, max_len: int, sampler: NegativeSampler,
                 item_category: torch.Tensor, eval_seed: int | None = None):
        self.store, self.max_len, self.sampler, self.item_category = store, max_len, sampler, item_category
        order = torch.argsort(targets[:, 1].clamp(max=max_len), stable=True)  # short batches trim well
        self.users, self.positions = targets[order, 0].contiguous(), targets[order, 1].contiguous()
        self.negatives = None
        if eval_seed is not None:
            self.negatives = sampler(self.users, torch.Generator().manual_seed(eval_seed))

    def __len__(self) -> int:
        return self.users.numel()

    def reading(self, store: EventStore) -> CTRExamples:
        # stays on the host: its negatives are drawn there, from host generators
        return self

    def lengths(self) -> torch.Tensor:
        """(rows,) history length of each row (for length bucketing)."""
        return self.positions.clamp(max=self.max_len)

    def targets(self) -> torch.Tensor:
        """(rows,) examples of each row: one positive and one negative."""
        return torch.full((len(self),), 2)

    def num_targets(self) -> int:
        """Examples over all rows."""
        return int(self.targets().sum())

    def __getitems__(self, indices: list[int]) -> dict:
        rows = torch.as_tensor(indices)
        users, positions = self.users[rows], self.positions[rows]
        s = self.store
        index, valid = s.gather(users, positions, history_width(positions, self.max_len))
        positives = s.items[s.offsets[users] + positions]
        negatives = self.negatives[rows] if self.negatives is not None else self.sampler(users)
        targets = torch.cat([positives, negatives])

        def twice(field: torch.Tensor) -> torch.Tensor:
            return s.take(field, index, valid).repeat(2, 1)  # (2B, L): positives then negatives

        return {
            "items": twice(s.items),
            "categories": twice(s.categories),
            "behaviors": twice(s.behaviors),
            "user": users.repeat(2),
            "target_item": targets,
            "target_category": self.item_category[targets],
            "label": torch.cat([torch.ones(rows.numel()), torch.zeros(rows.numel())]),
        }
