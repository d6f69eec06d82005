"""Pieces shared by the click-through models (BaseModel, DIN, GRU + attention, DIEN): the
output they return, the [item ; category] embedding of history and target, and the tower.

Each event and the target embed as the concatenation of an item and a category vector (the
DIEN paper's Amazon setting, 18 + 18 dimensions); padding embeds to zeros."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from research.models.components.embedding import init_embedding
from research.models.components.mlp import MLP

CTR_TASKS = frozenset({"ctr"})


@dataclass
class CTROutput:
    logits: torch.Tensor  # (B,) click logit of each (history, target) example
    aux_loss: torch.Tensor | None = None  # unweighted auxiliary loss (DIEN), added as aux_weight * aux_loss
    aux_weight: float = 0.0


class ItemCategoryEmbedding(nn.Module):
    def __init__(self, num_items: int, num_categories: int, dim: int):
        super().__init__()
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.categories = nn.Embedding(num_categories + 1, dim, padding_idx=0)
        init_embedding(self.items)
        init_embedding(self.categories)
        self.dim = 2 * dim

    def forward(self, items: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories)], dim=-1)  # (..., 2 * dim)

    def embed(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> history (B, L, E), mask (B, L) True at real events, target (B, E)."""
        return (self(batch["items"], batch["categories"]), batch["items"] > 0,
                self(batch["target_item"], batch["target_category"]))


def pool(history: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, L, E) -> (B, E) sum or mean over real events (padding embeds to zeros)."""
    total = history.sum(1)
    if mode == "sum":
        return total
    if mode == "mean":
        return total / mask.sum(1, keepdim=True).clamp(min=1)
    raise ValueError(f"pooling must be 'sum' or 'mean', got '{mode}'")


class Tower(nn.Module):
    """Batch norm on the concatenated features, then the MLP to one logit (as the DIEN code)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...] | list[int], activation_name: str, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_dim)
        self.mlp = MLP(in_dim, hidden, 1, activation_name, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(features)).squeeze(-1)  # (B,)
