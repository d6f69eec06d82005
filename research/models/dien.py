"""DIEN: Deep Interest Evolution Network (Zhou et al., AAAI 2019).

1. Interest extractor: a GRU over the history embeddings e_1..e_T gives interest states
   h_1..h_T. An auxiliary loss (eq. 4) makes h_t tell the next clicked event e_{t+1} from a
   sampled item, so each state carries the interest behind the next behaviour.
2. Interest evolving: the target attends over h_1..h_T (softmax over real steps); an AUGRU
   (attention-scaled update gate) runs over the states, so steps unrelated to the target
   barely move the evolving interest.
3. The tower scores [target ; pooled history ; target * pooled history ; final evolved
   interest] (the DIEN code's input, without the user id embedding).

The auxiliary negatives are drawn on the model's device at every training step, by training
popularity (as the target negatives of `task.negatives=popularity` and the DIEN
data scripts) or uniformly; `aux_loss_weight` scales the auxiliary loss (1.0 in the paper's
code).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from research.bounds import NON_NEGATIVE, Count, Rate
from research.data.schema import DatasetMeta
from research.models.components.augru import AUGRU
from research.models.components.ctr import CTR_TASKS, CTROutput, ItemCategoryEmbedding, Tower, pool
from research.models.components.recurrent import LeftPaddedRNN
from research.models.components.target_attention import TargetAttention
from research.sampling import item_weights


class DIEN(nn.Module):
    supported_tasks = CTR_TASKS

    def __init__(self, meta: DatasetMeta, embedding_dim: Count = 18, pooling: str = "sum",
                 aux_loss_weight: Annotated[float, NON_NEGATIVE] = 1.0, aux_mlp: tuple[int, ...] = (100, 50),
                 aux_negatives: str = "popularity",
                 attention_mlp: tuple[int, ...] = (80, 40), attention_activation: str = "sigmoid",
                 mlp: tuple[int, ...] = (200, 80), activation: str = "dice", dropout: Rate = 0.0):
        super().__init__()
        self.embedding = ItemCategoryEmbedding(meta.num_items, meta.num_categories, embedding_dim)
        dim = self.embedding.dim  # interest states keep the embedding width (as the DIEN code)
        self.pooling, self.aux_loss_weight = pooling, aux_loss_weight
        self.register_buffer("item_category", meta.item_category, persistent=False)
        weights = item_weights(meta.train_item_counts, aux_negatives, "DIEN aux_negatives")  # items 1..N
        self.register_buffer("aux_weights", weights.float(), persistent=False)
        self.extractor = LeftPaddedRNN(nn.GRU(dim, dim, batch_first=True))
        # batch norm first, as the DIEN code: the inputs are tiny at init
        self.aux_net = Tower(2 * dim, aux_mlp, "sigmoid")
        self.attention = TargetAttention(dim, attention_mlp, attention_activation, normalize=True)
        self.evolution = AUGRU(dim, dim)
        self.tower = Tower(4 * dim, mlp, activation, dropout)

    def forward(self, batch: dict) -> CTROutput:
        history, mask, target = self.embedding.embed(batch)  # (B, L, E), (B, L), (B, E)
        states = self.extractor(history, mask)  # (B, L, E), zeros at padding
        attention = self.attention.weights(states, target, mask)  # (B, L), 0 at padding
        evolved = self.evolution(states, attention)  # (B, E)
        pooled = pool(history, mask, self.pooling)
        logits = self.tower(torch.cat([target, pooled, target * pooled, evolved], dim=-1))
        aux = None
        if self.training and self.aux_loss_weight > 0:
            aux = self.auxiliary_loss(states, history, mask)
        return CTROutput(logits, aux, self.aux_loss_weight)

    def auxiliary_loss(self, states: torch.Tensor, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of h_t against e_{t+1} (label 1) and a sampled item (label 0),
        over every step t whose next event is real."""
        pairs = mask[:, :-1] & mask[:, 1:]  # (B, L-1)
        if not bool(pairs.any()):
            return states.new_zeros(())
        negatives = torch.multinomial(self.aux_weights, pairs.numel(), replacement=True).view(pairs.shape) + 1
        sampled = self.embedding(negatives, self.item_category[negatives])  # (B, L-1, E)
        h = states[:, :-1][pairs]  # (M, E)
        positive = self.aux_net(torch.cat([h, history[:, 1:][pairs]], dim=-1))
        negative = self.aux_net(torch.cat([h, sampled[pairs]], dim=-1))
        logits = torch.cat([positive, negative])
        labels = torch.cat([torch.ones_like(positive), torch.zeros_like(negative)])
        return F.binary_cross_entropy_with_logits(logits, labels)
