"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Causal self-attention over the last `max_len` events with learned positions. Positions count
from each sequence's first real event (not from the left edge of the padded window), so the
output at a position depends only on earlier events and never on the amount of padding.
Trained here with a full softmax over items (Klenitskiy & Vasilev, RecSys 2023, "Turning
Dross Into Gold Loss: is BERT4Rec really better than SASRec?").
"""

from __future__ import annotations

import torch
from torch import nn

from research.data.schema import DatasetMeta
from research.models import NEURAL_TASKS
from research.models.components.embedding import EventEmbedding, init_embedding
from research.models.components.heads import TiedHeads
from research.models.components.transformer import attention_mask, encoder


class SASRec(nn.Module):
    supported_tasks = NEURAL_TASKS

    def __init__(self, meta: DatasetMeta, max_len: int = 50, hidden_size: int = 64, num_layers: int = 2,
                 num_heads: int = 2, dropout: float = 0.2, use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior)
        self.positions = nn.Embedding(max_len, hidden_size)
        init_embedding(self.positions)
        self.dropout = nn.Dropout(dropout)
        self.encoder = encoder(hidden_size, num_layers, num_heads, dropout)
        self.heads = TiedHeads(self.embedding.items, hidden_size, meta.num_categories)

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["items"] > 0  # (B, L)
        position = (mask.long().cumsum(1) - 1).clamp(min=0)  # 0 at each sequence's first event
        x = self.dropout(self.embedding(batch) + self.positions(position))  # (B, L, D)
        h = self.encoder(x, mask=attention_mask(mask, self.num_heads, causal=True))
        return h * mask.unsqueeze(-1)  # (B, L, D)
