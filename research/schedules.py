"""Learning-rate schedules, stepped once per optimiser step (`scheduler` in conf/train.yaml):

    scheduler = Schedule(optimizer, total_steps=trainer.estimated_stepping_batches, **config)
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch

from research.bounds import NON_NEGATIVE


def warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: Annotated[int, NON_NEGATIVE] = 0,
           decay: Literal["constant", "linear", "cosine"] = "constant") -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps`, then `decay`: `constant`, or `linear` /
    `cosine` to 0 at `total_steps` (the trainer's max_epochs horizon; early stopping may end
    sooner). The arguments' types and ranges are checked when the config is composed."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
