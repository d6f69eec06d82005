"""GRU + attention: the "two layer GRU attention" baseline of the DIEN paper (Zhou et al.,
AAAI 2019; after Bahdanau et al., 2015). A two-layer GRU reads the history; the target
attends over its hidden states (softmax over real steps); the tower scores
[target ; pooled history ; target * pooled history ; attended state]. Unlike DIEN there is
no auxiliary loss and the attention does not steer the recurrence."""

from __future__ import annotations

import torch
from torch import nn

from research.bounds import Count, Rate
from research.data.schema import DatasetMeta
from research.models.components.ctr import CTR_TASKS, CTROutput, ItemCategoryEmbedding, Tower, pool
from research.models.components.recurrent import LeftPaddedRNN
from research.models.components.target_attention import TargetAttention


class GRUAttention(nn.Module):
    supported_tasks = CTR_TASKS

    def __init__(self, meta: DatasetMeta, embedding_dim: Count = 18, num_layers: Count = 2,
                 pooling: str = "sum",
                 attention_mlp: tuple[int, ...] = (80, 40), attention_activation: str = "sigmoid",
                 normalize_attention: bool = True, mlp: tuple[int, ...] = (200, 80), activation: str = "dice",
                 dropout: Rate = 0.0):
        super().__init__()
        self.embedding = ItemCategoryEmbedding(meta.num_items, meta.num_categories, embedding_dim)
        dim = self.embedding.dim  # the GRU keeps the embedding width, so the target can attend to its states
        self.pooling = pooling
        self.gru = LeftPaddedRNN(nn.GRU(dim, dim, num_layers, batch_first=True))
        self.attention = TargetAttention(dim, attention_mlp, attention_activation, normalize_attention)
        self.tower = Tower(4 * dim, mlp, activation, dropout)

    def forward(self, batch: dict) -> CTROutput:
        history, mask, target = self.embedding.embed(batch)  # (B, L, E), (B, L), (B, E)
        states = self.gru(history, mask)  # (B, L, E)
        pooled = pool(history, mask, self.pooling)
        attended = self.attention(states, target, mask)  # (B, E)
        return CTROutput(self.tower(torch.cat([target, pooled, target * pooled, attended], dim=-1)))
