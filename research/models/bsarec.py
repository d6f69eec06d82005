"""BSARec: Beyond Self-Attention for sequential Recommendation (Shin et al., AAAI 2024,
github.com/yehjin-shin/BSARec).

SASRec's post-norm stack (input LayerNorm, N(0, 0.02) init) where every layer mixes two views
of the sequence: causal self-attention, and a frequency filter over the whole window that keeps
the lowest `c // 2 + 1` Fourier components and rescales the rest by a learned beta^2 per
channel (the "attentive inductive bias": the low-pass sees the sequence's slow drift, which
attention learns poorly). The layer's output is `alpha * filter + (1 - alpha) * attention`,
then a GELU feed-forward.

The filter reads every position of the window, later ones included, so the model is not
causal (`causal = False`): only a row's last output predicts, and it trains on one target per
row (`task.train_rows=prefixes`, BSARec's own training examples); the framework refuses user
windows for it. Every row is encoded over a window of exactly `max_len` positions, as the
authors' code: rows are left-padded to `max_len` inside the model (so an output never depends
on how wide its batch is), positions count from the window's left edge (the latest event is
always position max_len - 1), and the padding positions take part in the filter as theirs do
(with their position embeddings; a padding position attends over the whole window, which is
what the authors' additive -10000 mask gives a row with no real key). With the weights copied
across, our outputs equal those of the authors' code (checked once, outside this repository: 1e-6); the one
difference is the padding item's vector, zero here and never scored, a trained class there.
Defaults are the authors' code defaults (c=3, alpha=0.9, 2 heads), not their per-dataset
tuned values (Beauty: c=5, alpha=0.7, 1 head, lr 5e-4).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from research.bounds import POSITIVE, UNIT, Count, Rate
from research.data.schema import DatasetMeta
from research.models import SEQUENCE_TASKS
from research.models.components.embedding import EventEmbedding, init_embedding
from research.models.components.heads import OutputHeads
from research.models.components.transformer import SelfAttention, feed_forward, init_linear_layers


class FrequencyFilter(nn.Module):
    """x (B, W, D) -> LN(x + drop(low + beta^2 * (x - low))), low = the lowest `c // 2 + 1`
    frequencies of x along the window."""

    def __init__(self, hidden_size: int, max_len: int, c: int, dropout: float, eps: float):
        super().__init__()
        if c // 2 + 1 > max_len // 2 + 1:
            raise ValueError(f"model.c ({c}) keeps more frequencies than a window of {max_len} has")
        self.register_buffer("keep", (torch.arange(max_len // 2 + 1) < c // 2 + 1).float()[:, None],
                             persistent=False)  # (F, 1)
        self.sqrt_beta = nn.Parameter(torch.randn(1, 1, hidden_size))  # as the authors: N(0, 1)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(x.float(), dim=1, norm="ortho") * self.keep  # fp32: no half-precision FFT
        low = torch.fft.irfft(spectrum, n=x.size(1), dim=1, norm="ortho").to(x.dtype)
        return self.norm(x + self.dropout(low + self.sqrt_beta ** 2 * (x - low)))


class BSARecLayer(nn.Module):
    """mixed = alpha * filter(x) + (1 - alpha) * LN(x + drop(attn(x))); LN(mixed + drop(ffn(mixed)))."""

    def __init__(self, hidden_size: int, num_heads: int, max_len: int, c: int, alpha: float, dropout: float,
                 attention_dropout: float, inner_factor: int, eps: float):
        super().__init__()
        self.alpha = alpha
        self.filter = FrequencyFilter(hidden_size, max_len, c, dropout, eps)
        self.attention = SelfAttention(hidden_size, num_heads, attention_dropout)
        self.ffn = feed_forward(hidden_size, inner_factor * hidden_size, "gelu", 0.0)
        self.norm1, self.norm2 = nn.LayerNorm(hidden_size, eps=eps), nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        attended = self.norm1(x + self.dropout(self.attention(x, x, allowed)))
        mixed = self.alpha * self.filter(x) + (1 - self.alpha) * attended
        return self.norm2(mixed + self.dropout(self.ffn(mixed)))


class BSARec(nn.Module):
    supported_tasks = SEQUENCE_TASKS
    causal = False  # the frequency filter reads later positions: trains on prefixes only

    def __init__(self, meta: DatasetMeta, max_len: Count = 50, hidden_size: Count = 64, num_layers: Count = 2,
                 num_heads: Count = 2, c: Count = 3, alpha: Annotated[float, UNIT] = 0.9, dropout: Rate = 0.5,
                 attention_dropout: Rate = 0.5, inner_factor: Count = 4, eps: Annotated[float, POSITIVE] = 1e-12,
                 init_std: Annotated[float, POSITIVE] = 0.02, item_dropout: Rate = 0.0, tie_item_table: bool = True,
                 item_bias: bool = False,
                 use_category: bool = True, use_behavior: bool = True):
        super().__init__()
        self.embedding = EventEmbedding(meta.num_items, meta.num_categories, meta.num_behaviors, hidden_size,
                                        use_category, use_behavior, init_std)
        self.positions = nn.Embedding(max_len, hidden_size)
        init_embedding(self.positions, init_std)
        self.input_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)
        # built one by one, so every layer starts from its own draw
        self.layers = nn.ModuleList(BSARecLayer(hidden_size, num_heads, max_len, c, alpha, dropout, attention_dropout,
                                                inner_factor, eps) for _ in range(num_layers))
        init_linear_layers(self.layers, init_std)
        self.heads = OutputHeads(self.embedding.items, hidden_size, meta.num_categories, item_dropout,
                                 tie_item_table, init_std, item_bias=item_bias)

    def forward(self, batch: dict) -> torch.Tensor:
        width, max_len = batch["items"].size(1), self.positions.num_embeddings
        real = F.pad(batch["items"] > 0, (max_len - width, 0))  # (B, W): every row over the whole window
        x = F.pad(self.embedding(batch), (0, 0, max_len - width, 0)) + self.positions.weight  # padding embeds to 0
        x = self.dropout(self.input_norm(x))
        allowed = real.unsqueeze(1) & torch.ones(max_len, max_len, dtype=torch.bool, device=x.device).tril()
        allowed = (allowed | ~allowed.any(-1, keepdim=True)).unsqueeze(1)  # (B, 1, W, W); see the module note
        for layer in self.layers:
            x = layer(x, allowed)
        return x[:, -width:] * real[:, -width:].unsqueeze(-1)  # (B, L, D); only the last position predicts
