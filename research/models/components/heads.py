"""Output heads: items scored against the (tied) input item embeddings, categories by a
linear layer. Column 0 of both is padding and always scores -inf."""

from __future__ import annotations

import torch
from torch import nn


def mask_padding(logits: torch.Tensor) -> torch.Tensor:
    return logits.index_fill(-1, torch.tensor([0], device=logits.device), float("-inf"))


class TiedHeads(nn.Module):
    def __init__(self, items: nn.Embedding, dim: int, num_categories: int):
        super().__init__()
        self.items = items
        self.category = nn.Linear(dim, num_categories + 1)

    @property
    def item_table(self) -> torch.Tensor:
        return self.items.weight  # (N+1, D)

    def item_logits(self, h: torch.Tensor) -> torch.Tensor:
        return mask_padding(h @ self.items.weight.T)  # (..., N+1)

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        return mask_padding(self.category(h))  # (..., C+1)
