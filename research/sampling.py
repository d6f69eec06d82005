"""How negative items are drawn: one definition for the CTR protocol's negatives, DIEN's
auxiliary negatives and the sampled item losses."""

from __future__ import annotations

import torch

DISTRIBUTIONS = ("popularity", "uniform")


def item_weights(train_item_counts: torch.Tensor, distribution: str, where: str) -> torch.Tensor:
    """(N+1,) training counts (index 0 padding) -> (N,) float64 weights of items 1..N.

    `popularity` is add-one smoothed, so items never seen as a training target can be drawn."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"{where}: distribution must be 'popularity' or 'uniform', got '{distribution}'")
    if distribution == "popularity":
        return train_item_counts[1:].double() + 1.0
    return torch.ones(train_item_counts.numel() - 1, dtype=torch.double)
