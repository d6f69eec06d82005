"""AUGRU: GRU with attentional update gate, the interest evolving layer of DIEN (Zhou et al.,
AAAI 2019, eq. 7-8): u'_t = a_t * u_t, h_t = (1 - u'_t) * h_{t-1} + u'_t * h~_t.

Weights use torch.nn.GRUCell's layout (gates r, z, n; torch's z is the keep gate, so DIEN's
update gate is u = 1 - z): with a_t = 1 the cell is exactly a GRU step, with a_t = 0 it
leaves the state unchanged (so left padding with zero attention never moves the state)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AUGRUCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """x (B, I), h (B, H), attention (B,) -> (B, H)."""
        i_r, i_z, i_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        update = (1 - torch.sigmoid(i_z + h_z)) * attention.unsqueeze(1)
        candidate = torch.tanh(i_n + r * h_n)
        return (1 - update) * h + update * candidate


class AUGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = AUGRUCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """x (B, L, I), attention (B, L) (0 at padding) -> final state (B, H). One step per
        time position (at most max_len), batched over users."""
        h = x.new_zeros(x.size(0), self.hidden_size)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h, attention[:, t])
        return h
