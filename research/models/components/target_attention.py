"""Attention of a target item over a user's history: the activation unit of DIN (Zhou et al.,
KDD 2018), also the attention of DIEN and of the GRU + attention baseline."""

from __future__ import annotations

import torch
from torch import nn

from research.models.components.mlp import MLP


class TargetAttention(nn.Module):
    """Score of each history step: an MLP on [h, t, h - t, h * t].

    normalize=False keeps DIN's raw weights (no softmax: the pooled vector's size keeps how
    strongly the history relates to the target); normalize=True is the softmax over real steps
    used by DIEN. Padding steps get weight exactly 0 either way."""

    def __init__(self, dim: int, hidden: tuple[int, ...] = (80, 40), activation_name: str = "sigmoid",
                 normalize: bool = False):
        super().__init__()
        self.unit = MLP(4 * dim, hidden, 1, activation_name)
        self.normalize = normalize

    def weights(self, history: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """history (B, L, D), target (B, D), mask (B, L) -> weights (B, L)."""
        t = target.unsqueeze(1).expand_as(history)
        scores = self.unit(torch.cat([history, t, history - t, history * t], dim=-1)).squeeze(-1)  # (B, L)
        if self.normalize:
            return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1).nan_to_num(0.0)
        return scores * mask

    def forward(self, history: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """-> (B, D) the history pooled by its relevance to the target."""
        return (self.weights(history, target, mask).unsqueeze(-1) * history).sum(1)
