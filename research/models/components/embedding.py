"""Input embedding shared by the neural models: item + category (+ behaviour type)."""

from __future__ import annotations

import torch
from torch import nn


def init_embedding(table: nn.Embedding, std: float = 0.02) -> None:
    nn.init.normal_(table.weight, std=std)
    if table.padding_idx is not None:
        with torch.no_grad():
            table.weight[table.padding_idx].zero_()


class EventEmbedding(nn.Module):
    """Sum of item, category and behaviour embeddings; every padding id embeds to zero.

    Category and behaviour inputs are side information; switch them off to train on item ids
    alone (as the published SASRec/GRU4Rec rows do)."""

    def __init__(self, num_items: int, num_categories: int, num_behaviors: int, dim: int,
                 use_category: bool = True, use_behavior: bool = True, init_std: float = 0.02):
        super().__init__()
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.categories = nn.Embedding(num_categories + 1, dim, padding_idx=0) if use_category else None
        self.behaviors = (
            nn.Embedding(num_behaviors + 1, dim, padding_idx=0) if use_behavior and num_behaviors > 0 else None
        )
        # Small init for every table (as BERT / RecBole): torch's N(0, 1) default would let the
        # few category and position vectors drown the item signal at the start of training.
        for table in (self.items, self.categories, self.behaviors):
            if table is not None:
                init_embedding(table, init_std)

    def forward(self, batch: dict) -> torch.Tensor:
        x = self.items(batch["items"])  # (B, L, D)
        if self.categories is not None:
            x = x + self.categories(batch["categories"])
        if self.behaviors is not None:
            x = x + self.behaviors(batch["behaviors"])
        return x
