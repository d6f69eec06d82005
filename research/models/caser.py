"""Caser: convolutional sequence embedding (Tang & Wang, WSDM 2018), the CNN of the model
zoo (the source documents' Conv1D model is its horizontal half).

At every position the last `window` events form an image (window x D): horizontal filters
of heights 1..window slide over time and are max-pooled (union-level patterns: "bought A
and B, then C"); vertical filters take weighted sums over the window (point-level).
Both are computed for all positions at once with causal (left-padded) convolutions, so the
output at position t depends only on events t-window+1..t. Windows that reach before a
sequence's first event see zero embeddings, exactly as Caser's zero padding. Dropout acts on
the convolution features only, as in the paper and RecBole; the output is ReLU(W features),
the paper's z. The user embedding of the paper is left out (it does not exist for unseen
users), so z is the output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from research.bounds import Count, Rate
from research.data.schema import DatasetMeta
from research.models import SEQUENCE_TASKS
from research.models.components.embedding import EventEmbedding
from research.models.components.heads import OutputHeads


class Caser(nn.Module):
    supported_tasks = SEQUENCE_TASKS

    def __init__(self, meta: DatasetMeta, hidden_size: Count = 64, window: Count = 5,
                 num_horizontal: Count = 16, num_vertical: Count = 4, dropout: Rate = 0.2,
                 item_dropout: Rate = 0.0, tie_item_table: bool = True, item_bias: bool = False,
                 use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.window = window
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior)
        self.horizontal = nn.ModuleList(nn.Conv1d(hidden_size, num_horizontal, h) for h in range(1, window + 1))
        self.vertical = nn.Conv1d(1, num_vertical, window)  # shared over embedding dimensions
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(num_horizontal * window + num_vertical * hidden_size, hidden_size)
        self.heads = OutputHeads(self.embedding.items, hidden_size, meta.num_categories, item_dropout,
                                 tie_item_table, item_bias=item_bias)

    def forward(self, batch: dict) -> torch.Tensor:
        mask = batch["items"] > 0  # (B, L)
        x = self.embedding(batch)  # (B, L, D)
        b, length, d = x.shape
        image = F.pad(x.transpose(1, 2), (self.window - 1, 0))  # (B, D, window-1 + L)
        horizontal = []
        for h, conv in enumerate(self.horizontal, start=1):
            activations = F.relu(conv(image))  # (B, n_h, L + window - h)
            # output t pools the window-h+1 placements inside events t-window+1..t
            horizontal.append(F.max_pool1d(activations, self.window - h + 1, stride=1))  # (B, n_h, L)
        vertical = self.vertical(image.reshape(b * d, 1, -1)).view(b, d, -1, length)  # (B, D, n_v, L)
        features = torch.cat([torch.cat(horizontal, 1), vertical.flatten(1, 2)], dim=1).transpose(1, 2)
        h = F.relu(self.project(self.dropout(features)))  # (B, L, D)
        return h * mask.unsqueeze(-1)
