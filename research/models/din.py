"""DIN: Deep Interest Network (Zhou et al., KDD 2018). The target item attends over the
history with the activation unit (an MLP on [h, t, h - t, h * t]); the weights are not
softmax-normalised, as in the paper. The tower scores
[target ; pooled history ; target * pooled history ; attended history] (the DIEN code's DIN)."""

from __future__ import annotations

import torch
from torch import nn

from research.bounds import Count, Rate
from research.data.schema import DatasetMeta
from research.models.components.ctr import CTR_TASKS, CTROutput, ItemCategoryEmbedding, Tower, pool
from research.models.components.target_attention import TargetAttention


class DIN(nn.Module):
    supported_tasks = CTR_TASKS

    def __init__(self, meta: DatasetMeta, embedding_dim: Count = 18, pooling: str = "sum",
                 attention_mlp: tuple[int, ...] = (80, 40), attention_activation: str = "sigmoid",
                 normalize_attention: bool = False, mlp: tuple[int, ...] = (200, 80), activation: str = "dice",
                 dropout: Rate = 0.0):
        super().__init__()
        self.embedding = ItemCategoryEmbedding(meta.num_items, meta.num_categories, embedding_dim)
        dim = self.embedding.dim
        self.pooling = pooling
        self.attention = TargetAttention(dim, attention_mlp, attention_activation, normalize_attention)
        self.tower = Tower(4 * dim, mlp, activation, dropout)

    def forward(self, batch: dict) -> CTROutput:
        history, mask, target = self.embedding.embed(batch)  # (B, L, E), (B, L), (B, E)
        pooled = pool(history, mask, self.pooling)
        attended = self.attention(history, target, mask)  # (B, E)
        return CTROutput(self.tower(torch.cat([target, pooled, target * pooled, attended], dim=-1)))
