"""Learning-rate schedules, stepped once per optimiser step (`scheduler` in conf/train.yaml):

    scheduler = Schedule(optimizer, total_steps=trainer.estimated_stepping_batches, **config)
"""

from __future__ import annotations

import math

import torch


def warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
           decay: str = "constant") -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps`, then `decay`: `constant`, or `linear` /
    `cosine` to 0 at `total_steps` (the trainer's max_epochs horizon; early stopping may end
    sooner)."""
    if decay not in ("constant", "linear", "cosine"):
        raise ValueError(f"scheduler.decay must be constant, linear or cosine, got '{decay}'")
    if warmup_steps < 0:
        raise ValueError(f"scheduler.warmup_steps must be >= 0, got {warmup_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
