"""The Transformer encoder of SASRec and BERT4Rec, and its attention masks."""

from __future__ import annotations

import torch
from torch import nn


def encoder(hidden_size: int, num_layers: int, num_heads: int, dropout: float) -> nn.TransformerEncoder:
    """Pre-norm layers with GELU and a 4x feed-forward, and a final layer norm."""
    layer = nn.TransformerEncoderLayer(hidden_size, num_heads, dim_feedforward=hidden_size * 4, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(hidden_size), enable_nested_tensor=False)


def attention_mask(real: torch.Tensor, num_heads: int, causal: bool) -> torch.Tensor:
    """(B, L) real-event mask -> (B * heads, L, L) boolean, True = may NOT attend.

    Padding keys are blocked (and future keys when causal); every query may attend to itself
    so padded rows stay finite."""
    length = real.size(1)
    blocked = ~real.unsqueeze(1)  # (B, 1, L)
    if causal:
        blocked = blocked | torch.ones(length, length, dtype=torch.bool, device=real.device).triu(1)
    blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=real.device)
    return blocked.repeat_interleave(num_heads, dim=0)
