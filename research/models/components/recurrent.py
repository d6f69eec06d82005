"""Run a torch RNN over left-padded batches as if each sequence started at its first event.

Each row is rotated so its padding moves to the right end; the RNN then reads every real
event before any padding, so outputs at real positions are exact (padding never enters the
state that produces them) without the cost of packed sequences. Outputs are rotated back."""

from __future__ import annotations

import torch
from torch import nn


def rotate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Row-wise rotation along dim 1: out[b, t] = x[b, (t + shift[b]) % L]."""
    length = x.size(1)
    index = (torch.arange(length, device=x.device) + shift.unsqueeze(1)) % length
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class LeftPaddedRNN(nn.Module):
    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        if not rnn.batch_first:
            raise ValueError("LeftPaddedRNN needs batch_first=True")
        self.rnn = rnn

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D), mask: (B, L) True at real events -> (B, L, H), zeros at padding."""
        pads = x.size(1) - mask.sum(1)
        out, _ = self.rnn(rotate(x, pads))  # real events first, padding after
        return rotate(out, -pads) * mask.unsqueeze(-1)
