"""Training losses. Item losses take the query vectors at the positions that have a target,
the target ids and the model's heads, so sampled variants can score a subset of items.

    item_loss(query (M, D), targets (M,), heads) -> scalar
    category_loss(logits (M, C+1), targets (M,)) -> scalar
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FullSoftmaxCE(nn.Module):
    """Cross-entropy over the whole catalogue (the loss behind the strong SASRec results of
    Klenitskiy & Vasilev, RecSys 2023)."""

    def forward(self, query: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        # score real items only (row 0 of the table is padding): no (M, N+1) masked copy
        logits = query @ heads.item_table[1:].T  # (M, N)
        return F.cross_entropy(logits, targets - 1)


class CategoryCE(nn.Module):
    """Cross-entropy over categories, with optional label smoothing (Szegedy et al., 2016)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # drop the padding column so smoothing mass never goes to it
        return F.cross_entropy(logits[:, 1:], targets - 1, label_smoothing=self.label_smoothing)
