"""The Transformer encoder of SASRec and BERT4Rec: a stack of blocks in one of the published
arrangements, chosen in config (`model/block=post_norm|pre_norm|sasrec`), and its attention
masks.

- `PostNormBlock`: BERT (Devlin et al., 2019), as RecBole's and BSARec's SASRec: the summed
  input embeddings are layer-normalised, each sub-layer is followed by dropout, the residual
  sum and a LayerNorm; no final norm.
- `PreNormBlock`: each sub-layer reads a LayerNorm of the residual stream (Xiong et al.,
  2020); the stack ends with a LayerNorm.
- `SASRecBlock`: Kang & McAuley's own block (ICDM 2018, github.com/kang205/SASRec): the
  queries are layer-normalised and the residual adds to them, keys and values are the raw
  stream; a LayerNorm before the ReLU feed-forward; a final LayerNorm.

Every layer is constructed, and so initialised, separately (`nn.TransformerEncoder` deep-copies
one layer: all layers would start identical). Linear weights start N(0, `init_std`) with zero
biases, as BERT and RecBole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from research.bounds import POSITIVE, Count


class SelfAttention(nn.Module):
    """Multi-head attention of `queries` (B, L, D) over `keys` (B, L, D) (values = keys)."""

    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"model.hidden_size ({hidden_size}) must be a multiple of model.num_heads ({num_heads})")
        self.num_heads, self.attention_dropout = num_heads, attention_dropout
        self.query, self.key, self.value = (nn.Linear(hidden_size, hidden_size) for _ in range(3))
        self.output = nn.Linear(hidden_size, hidden_size)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """queries (B, Q, D) over keys (B, L, D), allowed (B, 1, Q, L) -> (B, Q, D)."""
        b, length, d = queries.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, heads, L, D / heads)
            return x.view(b, x.size(1), self.num_heads, d // self.num_heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            heads(self.query(queries)), heads(self.key(keys)), heads(self.value(keys)), attn_mask=allowed,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # (B, heads, Q, D / heads)
        return self.output(attended.transpose(1, 2).reshape(b, length, d))


def feed_forward(hidden_size: int, inner_size: int, activation: str, dropout: float) -> nn.Sequential:
    act = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]
    return nn.Sequential(nn.Linear(hidden_size, inner_size), act(), nn.Dropout(dropout),
                         nn.Linear(inner_size, hidden_size))


class Block(nn.Module):
    """What every arrangement holds: self-attention, a feed-forward, two LayerNorms, dropout.
    Subclasses say whether the stack normalises its input and its output, and arrange the
    sub-layers in `forward(x (B, L, D), allowed (B, 1, L, L)) -> (B, L, D)`. The feed-forward
    width, activation and LayerNorm epsilon come from the block's config file."""

    input_norm: bool
    final_norm: bool
    ffn_dropout: bool = True  # dropout inside the feed-forward, after its activation

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, attention_dropout: float,
                 inner_factor: Count, activation: str, eps: Annotated[float, POSITIVE]):
        super().__init__()
        self.attention = SelfAttention(hidden_size, num_heads, attention_dropout)
        self.ffn = feed_forward(hidden_size, inner_factor * hidden_size, activation,
                                dropout if self.ffn_dropout else 0.0)
        self.norm1, self.norm2 = nn.LayerNorm(hidden_size, eps=eps), nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)


class PostNormBlock(Block):
    """x = LN(x + drop(attn(x))); x = LN(x + drop(ffn(x)))."""

    input_norm, final_norm, ffn_dropout = True, False, False

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, latest: bool = False) -> torch.Tensor:
        q, allowed = (x[:, -1:], allowed[:, :, -1:]) if latest else (x, allowed)
        x = self.norm1(q + self.dropout(self.attention(q, x, allowed)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class PreNormBlock(Block):
    """x = x + drop(attn(LN(x))); x = x + drop(ffn(LN(x)))."""

    input_norm, final_norm = False, True

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, latest: bool = False) -> torch.Tensor:
        k = self.norm1(x)
        q, x, allowed = (k[:, -1:], x[:, -1:], allowed[:, :, -1:]) if latest else (k, x, allowed)
        x = x + self.dropout(self.attention(q, k, allowed))
        return x + self.dropout(self.ffn(self.norm2(x)))


class SASRecBlock(Block):
    """q = LN(x); x = q + attn(q over x); x = LN(x); x = x + drop(ffn(x)) (Kang & McAuley)."""

    input_norm, final_norm = False, True

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, latest: bool = False) -> torch.Tensor:
        q = self.norm1(x[:, -1:] if latest else x)
        x = self.norm2(q + self.attention(q, x, allowed[:, :, -1:] if latest else allowed))
        return x + self.dropout(self.ffn(x))


class TransformerEncoder(nn.Module):
    """Input norm (if the block asks for it) and dropout, `num_layers` blocks, final norm (if
    the block asks for it). `block` builds one layer: block(hidden_size, num_heads, dropout,
    attention_dropout) (a `_partial_` config from conf/model/block/)."""

    def __init__(self, block: Callable[..., Block], hidden_size: int, num_layers: int, num_heads: int,
                 dropout: float, attention_dropout: float, init_std: float = 0.02):
        super().__init__()
        self.layers = nn.ModuleList(block(hidden_size, num_heads, dropout, attention_dropout)
                                    for _ in range(num_layers))
        first = self.layers[0]
        self.input_norm = nn.LayerNorm(hidden_size, eps=first.norm1.eps) if first.input_norm else nn.Identity()
        self.final_norm = nn.LayerNorm(hidden_size, eps=first.norm1.eps) if first.final_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        init_linear_layers(self, init_std)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, latest: bool = False) -> torch.Tensor:
        """x (B, L, D) summed input embeddings, allowed (B, 1, L, L) -> (B, L, D), or with `latest`
        the last position's output only (B, D): the last layer then attends from that position
        alone (evaluation needs nothing else; about a third of the encoder's work saved)."""
        x = self.dropout(self.input_norm(x))
        for i, layer in enumerate(self.layers):
            x = layer(x, allowed, latest and i == len(self.layers) - 1)
        return self.final_norm(x[:, -1] if latest else x)


def init_linear_layers(module: nn.Module, std: float) -> None:
    """Every linear layer inside `module`: weights N(0, std), zero biases (BERT / RecBole)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)


def attention_mask(real: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, L) real-event mask -> (B, 1, L, L) boolean, True = may attend (broadcast over heads).

    Padding keys are blocked (and future keys when causal); every query may attend to itself
    so padded rows stay finite."""
    length = real.size(1)
    allowed = real.unsqueeze(1)  # (B, 1, L)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=real.device)
    return allowed.unsqueeze(1)
