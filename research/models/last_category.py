"""Last-category baseline: predicts that the next event stays in the category of the latest
one (ties among the other categories broken by training frequency); for items, ranks the
latest category's items first, each group by training popularity. No parameters."""

from __future__ import annotations

import torch
from torch import nn

from research.data.schema import DatasetMeta
from research.models.components.heads import mask_padding, mask_padding_rows

# Large enough that any item of the latest category outranks every other item.
CATEGORY_BONUS = 1e4


class LastCategoryHeads(nn.Module):
    def __init__(self, meta: DatasetMeta):
        super().__init__()
        self.register_buffer("item_prior", (meta.train_item_counts.double() + 1).log().float())
        self.register_buffer("category_prior", (meta.train_category_counts.double() + 1).log().float())
        self.register_buffer("item_category", meta.item_category)
        self.item_table = None

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h: (..., C+1) one-hot of the latest category."""
        return mask_padding(h * CATEGORY_BONUS + self.category_prior)

    def item_scores(self, h: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        in_latest = h.T[self.item_category[items]]  # (n, B): 1 where the item's category is the latest
        return mask_padding_rows(in_latest * CATEGORY_BONUS + self.item_prior[items].unsqueeze(1), items)


class LastCategory(nn.Module):
    supported_tasks = frozenset({"next_item", "next_category"})

    def __init__(self, meta: DatasetMeta):
        super().__init__()
        self.num_categories = meta.num_categories
        self.heads = LastCategoryHeads(meta)

    def forward(self, batch: dict) -> torch.Tensor:
        # (B, L, C+1): one-hot of the category at each position (padding -> all zeros)
        onehot = nn.functional.one_hot(batch["categories"], self.num_categories + 1).float()
        onehot[..., 0] = 0
        return onehot
