"""Majority baseline: always predicts the training split's most frequent category, and ranks
items by training popularity (the "Pop" row of every recommendation table). No parameters."""

from __future__ import annotations

import torch
from torch import nn

from research.data.schema import DatasetMeta
from research.models.components.heads import mask_padding, mask_padding_rows


class PriorHeads(nn.Module):
    """Scores that ignore the input: log of (add-one smoothed) training counts."""

    def __init__(self, item_counts: torch.Tensor, category_counts: torch.Tensor):
        super().__init__()
        self.register_buffer("item_prior", (item_counts.double() + 1).log().float())
        self.register_buffer("category_prior", (category_counts.double() + 1).log().float())
        self.item_table = None

    def item_scores(self, h: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        return mask_padding_rows(self.item_prior[items].unsqueeze(1).repeat(1, h.size(0)), items)

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        return mask_padding(self.category_prior.expand(*h.shape[:-1], -1))


class Majority(nn.Module):
    supported_tasks = frozenset({"next_item", "next_category"})

    def __init__(self, meta: DatasetMeta):
        super().__init__()
        self.heads = PriorHeads(meta.train_item_counts, meta.train_category_counts)

    def forward(self, batch: dict) -> torch.Tensor:
        return torch.zeros(*batch["items"].shape, 1, device=batch["items"].device)  # (B, L, 1)
