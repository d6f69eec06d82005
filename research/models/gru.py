"""GRU4Rec: session-based recommendation with recurrent neural networks
(Hidasi et al., ICLR 2016), here trained with a full softmax over items at every position."""

from __future__ import annotations

import torch
from torch import nn

from research.data.schema import DatasetMeta
from research.models import NEURAL_TASKS
from research.models.components.embedding import EventEmbedding
from research.models.components.heads import TiedHeads
from research.models.components.recurrent import LeftPaddedRNN


class GRU4Rec(nn.Module):
    supported_tasks = NEURAL_TASKS
    cell: type[nn.RNNBase] = nn.GRU  # subclasses swap the recurrent cell (see lstm.py)

    def __init__(self, meta: DatasetMeta, hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.2,
                 use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior)
        self.dropout = nn.Dropout(dropout)
        self.rnn = LeftPaddedRNN(self.cell(hidden_size, hidden_size, num_layers, batch_first=True,
                                           dropout=dropout if num_layers > 1 else 0.0))
        self.heads = TiedHeads(self.embedding.items, hidden_size, meta.num_categories)

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["items"] > 0  # (B, L)
        return self.dropout(self.rnn(self.dropout(self.embedding(batch)), mask))  # (B, L, H)

    def step(self, batch: dict, state):
        """One event per row (batch tensors (B, 1)) from the recurrent state after the row's
        earlier events (None: no events yet) -> (output (B, H), new state): O(1) per event,
        for real-time tracking (research/tracking.py). Same output as `forward` over the
        whole history, in eval mode."""
        out, state = self.rnn.rnn(self.dropout(self.embedding(batch)), state)
        return self.dropout(out[:, -1]), state
