"""Fully connected towers of the click-through models, with the activations of the DIN paper
(Zhou et al., KDD 2018, "Deep Interest Network for Click-Through Rate Prediction")."""

from __future__ import annotations

import torch
from torch import nn


class Dice(nn.Module):
    """Data-adaptive activation (DIN paper, eq. 9): p = sigmoid(BN(x)), out = p*x + (1-p)*alpha*x.
    Works on (..., D): statistics are taken over every leading position."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.norm(x.reshape(-1, x.size(-1))).view_as(x))
        return p * x + (1 - p) * self.alpha * x


def activation(name: str, dim: int) -> nn.Module:
    makers = {"dice": lambda: Dice(dim), "prelu": lambda: nn.PReLU(dim), "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    if name not in makers:
        raise ValueError(f"unknown activation '{name}' (choose from {', '.join(makers)})")
    return makers[name]()


class MLP(nn.Module):
    """Linear -> activation (-> dropout) for each hidden width, then a linear output layer."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...] | list[int], out_dim: int = 1,
                 activation_name: str = "prelu", dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), activation(activation_name, width)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
