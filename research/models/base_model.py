"""BaseModel: the Embedding & MLP baseline of the DIEN paper (Zhou et al., AAAI 2019): the
history is pooled into one vector regardless of the target, then an MLP scores
[target ; pooled history]."""

from __future__ import annotations

import torch
from torch import nn

from research.bounds import Count, Rate
from research.data.schema import DatasetMeta
from research.models.components.ctr import CTR_TASKS, CTROutput, ItemCategoryEmbedding, Tower, pool


class BaseModel(nn.Module):
    supported_tasks = CTR_TASKS

    def __init__(self, meta: DatasetMeta, embedding_dim: Count = 18, pooling: str = "sum",
                 mlp: tuple[int, ...] = (200, 80), activation: str = "dice", dropout: Rate = 0.0):
        super().__init__()
        self.embedding = ItemCategoryEmbedding(meta.num_items, meta.num_categories, embedding_dim)
        self.pooling = pooling
        self.tower = Tower(2 * self.embedding.dim, mlp, activation, dropout)

    def forward(self, batch: dict) -> CTROutput:
        history, mask, target = self.embedding.embed(batch)  # (B, L, E), (B, L), (B, E)
        return CTROutput(self.tower(torch.cat([target, pool(history, mask, self.pooling)], dim=-1)))
