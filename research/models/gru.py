"""GRU4Rec: session-based recommendation with recurrent neural networks
(Hidasi et al., ICLR 2016), here trained with a full softmax over items at every position.

Items are scored against the input item embeddings (tied, as the author's "constrained
embedding" option). `embedding_size` different from `hidden_size` adds RecBole's linear map
from the recurrent state back to the embedding space (RecBole: embedding 64, hidden 128)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from research.bounds import AT_LEAST_ONE, Count, Rate
from research.data.schema import DatasetMeta
from research.models import SEQUENCE_TASKS
from research.models.components.embedding import EventEmbedding
from research.models.components.heads import OutputHeads
from research.models.components.recurrent import LeftPaddedRNN


class GRU4Rec(nn.Module):
    supported_tasks = SEQUENCE_TASKS
    cell: type[nn.RNNBase] = nn.GRU  # subclasses swap the recurrent cell (see lstm.py)

    def __init__(self, meta: DatasetMeta, hidden_size: Count = 64, num_layers: Count = 1,
                 dropout: Rate = 0.2,
                 embedding_size: Annotated[int | None, AT_LEAST_ONE] = None, item_dropout: Rate = 0.0,
                 tie_item_table: bool = True, item_bias: bool = False,
                 use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        embedding_size = embedding_size or hidden_size
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, embedding_size,
                                        use_category, use_behavior)
        self.dropout = nn.Dropout(dropout)
        self.rnn = LeftPaddedRNN(self.cell(embedding_size, hidden_size, num_layers, batch_first=True,
                                           dropout=dropout if num_layers > 1 else 0.0))
        # (B, L, hidden) -> (B, L, embedding): the space the tied item table scores in
        self.project = nn.Linear(hidden_size, embedding_size) if embedding_size != hidden_size else nn.Identity()
        self.heads = OutputHeads(self.embedding.items, embedding_size, meta.num_categories, item_dropout,
                                 tie_item_table, item_bias=item_bias)

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["items"] > 0  # (B, L)
        h = self.rnn(self.dropout(self.embedding(batch)), mask)  # (B, L, hidden), zeros at padding
        return self.project(self.dropout(h)) * mask.unsqueeze(-1)  # (B, L, D)

    def step(self, batch: dict, state):
        """One event per row (batch tensors (B, 1)) from the recurrent state after the row's
        earlier events (None: no events yet) -> (output (B, H), new state): O(1) per event,
        for real-time tracking (research/tracking.py). Same output as `forward` over the
        whole history, in eval mode."""
        out, state = self.rnn.rnn(self.dropout(self.embedding(batch)), state)
        return self.project(self.dropout(out[:, -1])), state
