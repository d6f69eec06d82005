"""BERT4Rec: sequential recommendation with bidirectional encoder representations from
Transformer (Sun et al., CIKM 2019), trained with the cloze objective.

Training (`training_batch`): the whole training window (inputs plus its last target) with a
random `mask_prob` share of real events replaced by a [MASK] vector (item, category and
behaviour alike, so nothing of a masked event leaks); the targets are the masked events, and
each masked position sees the events on both sides. A `last_only_prob` share of windows
masks only the latest event instead: the inference task itself (RecBole's `ft_ratio`, 0.5 by
default there, drawn per batch; here per window, the same share with less variance). Our
default is 0: on Beauty those windows cost more targets than they teach.
Inference: a [MASK] is appended after the latest event and its output predicts the next one,
so evaluation uses the same past-only input as every other model. Positions count back from the latest token, so the
output does not depend on the amount of left padding.

Only the last output predicts anything (the others are contextual states of the history):
the model is not causal position by position, and says so with `causal = False`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
from torch import nn

from research.bounds import OPEN_UNIT, POSITIVE, UNIT, Count, Rate
from research.data.schema import DatasetMeta
from research.models import SEQUENCE_TASKS
from research.models.components.embedding import EventEmbedding, init_embedding
from research.models.components.heads import OutputHeads
from research.models.components.transformer import Block, TransformerEncoder, attention_mask


class BERT4Rec(nn.Module):
    supported_tasks = SEQUENCE_TASKS
    causal = False

    def __init__(self, meta: DatasetMeta, block: Callable[..., Block], max_len: Count = 50, hidden_size: Count = 64,
                 num_layers: Count = 2, num_heads: Count = 2, dropout: Rate = 0.2,
                 attention_dropout: Rate = 0.2,
                 mask_prob: Annotated[float, OPEN_UNIT] = 0.2, last_only_prob: Annotated[float, UNIT] = 0.0,
                 init_std: Annotated[float, POSITIVE] = 0.02, item_dropout: Rate = 0.0, tie_item_table: bool = True,
                 item_bias: bool = False, use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.mask_prob, self.last_only_prob = mask_prob, last_only_prob
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior, init_std)
        self.mask_token = nn.Parameter(torch.randn(hidden_size) * init_std)
        self.positions = nn.Embedding(max_len + 1, hidden_size)  # a training window holds max_len + 1 events
        init_embedding(self.positions, init_std)
        self.encoder = TransformerEncoder(block, hidden_size, num_layers, num_heads, dropout, attention_dropout,
                                          init_std)
        # BERT's prediction transform before scoring against the tied item table (as BERT4Rec's and
        # RecBole's output layer)
        self.transform = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size))
        self.heads = OutputHeads(self.embedding.items, hidden_size, meta.num_categories, item_dropout,
                                 tie_item_table, init_std, item_bias=item_bias)

    def training_batch(self, batch: dict) -> dict:
        """Next-event training window (B, L) -> cloze batch (B, L+1) with `cloze_mask`."""
        def whole(key: str) -> torch.Tensor:
            return torch.cat([batch[key], batch[f"target_{key}"][:, -1:]], dim=1)

        items, categories, behaviors = whole("items"), whole("categories"), whole("behaviors")
        masked = (torch.rand(items.shape, device=items.device) < self.mask_prob) & (items > 0)
        last_only = torch.rand(items.size(0), device=items.device) < self.last_only_prob  # (B,)
        masked[last_only] = False
        masked[:, -1] |= last_only | ~masked.any(1)  # every row predicts something: its latest event, as at inference
        return {"items": items, "categories": categories, "behaviors": behaviors, "cloze_mask": masked,
                "target_items": torch.where(masked, items, 0), "target_categories": torch.where(masked, categories, 0)}

    def forward(self, batch: dict, latest: bool = False) -> torch.Tensor:
        x = self.embedding(batch)  # (B, L, D)
        real = batch["items"] > 0
        cloze = "cloze_mask" in batch
        if cloze:
            x = torch.where(batch["cloze_mask"].unsqueeze(-1), self.mask_token, x)
        else:  # append the [MASK] whose output predicts the next event
            x = torch.cat([x, self.mask_token.expand(x.size(0), 1, -1)], dim=1)
            real = torch.cat([real, real.new_ones(real.size(0), 1)], dim=1)
        position = (real.flip(1).long().cumsum(1).flip(1) - 1).clamp(min=0)  # 0 at the latest token
        h = self.encoder(x + self.positions(position), attention_mask(real, causal=False), latest and not cloze)
        if latest and not cloze:  # the appended [MASK]'s output alone (B, D)
            return self.transform(h)
        h = self.transform(h) * real.unsqueeze(-1)
        return h if cloze else h[:, 1:]  # (B, L+1, D) for training; (B, L, D), last = prediction

    def latest(self, batch: dict) -> torch.Tensor:
        return self(batch, latest=True)

