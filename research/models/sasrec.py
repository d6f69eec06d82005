"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Causal self-attention over the last `max_len` events with learned positions. Positions count
from each sequence's first real event (not from the left edge of the padded window), so the
output at a position depends only on earlier events and never on the amount of padding.
The block arrangement (post-norm as RecBole, pre-norm, or the authors' own) is config:
`model/block=...` (see components/transformer.py). Trained here with a full softmax over
items by default (Klenitskiy & Vasilev, RecSys 2023, "Turning Dross Into Gold Loss: is BERT4Rec
really better than SASRec?").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
from torch import nn

from research.bounds import POSITIVE, Count, Rate
from research.data.schema import DatasetMeta
from research.models import SEQUENCE_TASKS
from research.models.components.embedding import EventEmbedding, init_embedding
from research.models.components.heads import OutputHeads
from research.models.components.transformer import Block, TransformerEncoder, attention_mask


class SASRec(nn.Module):
    supported_tasks = SEQUENCE_TASKS

    def __init__(self, meta: DatasetMeta, block: Callable[..., Block], max_len: Count = 50, hidden_size: Count = 64,
                 num_layers: Count = 2, num_heads: Count = 2, dropout: Rate = 0.5,
                 attention_dropout: Rate = 0.5,
                 init_std: Annotated[float, POSITIVE] = 0.02, item_dropout: Rate = 0.0, tie_item_table: bool = True,
                 item_bias: bool = False,
                 use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior, init_std)
        self.positions = nn.Embedding(max_len, hidden_size)
        init_embedding(self.positions, init_std)
        self.encoder = TransformerEncoder(block, hidden_size, num_layers, num_heads, dropout, attention_dropout,
                                          init_std)
        self.heads = OutputHeads(self.embedding.items, hidden_size, meta.num_categories, item_dropout,
                                 tie_item_table, init_std, item_bias=item_bias)

    def forward(self, batch: dict, latest: bool = False) -> torch.Tensor:
        mask = batch["items"] > 0  # (B, L)
        position = (mask.long().cumsum(1) - 1).clamp(min=0)  # 0 at each sequence's first event
        x = self.embedding(batch) + self.positions(position)  # (B, L, D)
        h = self.encoder(x, attention_mask(mask, causal=True), latest)
        return h * (mask[:, -1:] if latest else mask.unsqueeze(-1))  # (B, L, D), or (B, D) at the latest event

    def latest(self, batch: dict) -> torch.Tensor:
        return self(batch, latest=True)
