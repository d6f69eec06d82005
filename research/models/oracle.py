"""Bayes-optimal oracle for the simulator (evaluation only): forward filtering of the hidden
interest chain with the simulator's true parameters (Rabiner, 1989, the forward algorithm).

For a target at position n it computes P(state_n | items_0..n-1, the user's profile group)
exactly, over the user's whole history (not only the `max_len` window the models see), then
    P(next category = c) = sum_s P(state_n = s) M[s, c],  M = (1-eps) I + eps/(C-1) (1 - I)
    P(next item = i)     = sum_s P(state_n = s) E_p[s, i], E = SimulatorParams.emission_matrix()
In a drifting world every step uses the parameters in force at its event (the simulator's
rule: the chain moves with the period of the previous event, an item is drawn from the
catalogue of its own period p), so the oracle stays exact in every window.
No predictor that sees the same events can beat it in expectation: it is the ceiling of every
simulator table. It needs the parameters the synthetic builder stores beside its data.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from research.data.builders.synthetic import PARAMS_FILE
from research.data.cache import id_map
from research.data.schema import DatasetMeta
from research.data.simulator import SimulatorParams
from research.models import SEQUENCE_TASKS
from research.models.components.heads import mask_padding, mask_padding_rows


def dense_parameters(meta: DatasetMeta) -> dict[str, torch.Tensor]:
    """The simulator's parameters re-indexed to the processed data's dense ids."""
    directory = meta.artefact_dir
    if directory is None or not (directory / PARAMS_FILE).is_file():
        raise ValueError(f"model=oracle needs the simulator's parameters ({PARAMS_FILE}); "
                         f"dataset '{meta.name}' at {directory} has none (use data=synthetic)")
    params = SimulatorParams.load(directory / PARAMS_FILE)
    categories, items, users = (id_map(directory, name) for name in ("categories", "items", "users"))
    raw_category = categories["raw"].cast(pl.Int64).to_numpy()  # dense d -> raw category of d+1
    if raw_category.size != params.transition.shape[-1]:
        raise ValueError(f"model=oracle: the data has {raw_category.size} categories, the simulator "
                         f"{params.transition.shape[-1]} (every category must occur in the log)")
    transition = params.transition[:, :, raw_category][:, :, :, raw_category]  # (P, G, C, C)
    periods = params.period_starts.size
    emission = np.ones((periods, raw_category.size, meta.num_items + 1))  # column 0: padding, never observed
    emission[:, :, 1:] = params.emission_matrix()[:, raw_category][:, :, items["raw"].cast(pl.Int64).to_numpy()]
    c, eps = raw_category.size, params.exploration
    observed = np.full((c, c), eps / (c - 1))
    np.fill_diagonal(observed, 1.0 - eps)  # P(observed category | hidden state)
    arrays = {"transition": transition, "initial": params.initial[:, raw_category], "emission": emission,
              "observed": observed, "user_group": users["group"].cast(pl.Int64).to_numpy(),
              "period_starts": params.period_starts}
    return {k: torch.tensor(v) for k, v in arrays.items()}  # copies: the params are read-only


def padded_history(history: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, H) flat (row, item) pairs in time order -> (rows, T) items, left-aligned, and counts."""
    row, item = history
    counts = torch.bincount(row, minlength=rows)
    start = torch.cumsum(counts, 0) - counts
    out = item.new_zeros(rows, max(int(counts.max()) if rows else 0, 1))
    out[row, torch.arange(row.numel(), device=row.device) - start[row]] = item
    return out, counts


class OracleHeads(nn.Module):
    """h: (..., P * C) predictive distribution of the hidden state, placed in the block of the
    target's period (zeros elsewhere) -> log-probabilities. observed: (C, C); emission: (P, C, I+1)."""

    def __init__(self, observed: torch.Tensor, emission: torch.Tensor):
        super().__init__()
        self.register_buffer("observed", observed.repeat(emission.size(0), 1))  # the same in every period
        self.register_buffer("emission", emission)
        self.item_table = None

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        probs = h.double() @ self.observed
        return mask_padding(torch.cat([probs.new_zeros(*probs.shape[:-1], 1), probs], -1).log().float())

    def item_scores(self, h: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        emission = self.emission.flatten(0, 1)[:, items]  # (P * C, n)
        return mask_padding_rows((emission.T @ h.double().T).log().float(), items)


class Oracle(nn.Module):
    supported_tasks = SEQUENCE_TASKS
    reads_window = False  # reads the user's full history and the simulator's parameters instead

    def __init__(self, meta: DatasetMeta):
        super().__init__()
        p = dense_parameters(meta)
        for name in ("transition", "initial", "user_group", "period_starts"):
            self.register_buffer(name, p[name])
        self.heads = OracleHeads(p["observed"], p["emission"])

    def period_of(self, timestamps: torch.Tensor) -> torch.Tensor:
        last = self.period_starts.numel() - 1
        return (torch.searchsorted(self.period_starts, timestamps, right=True) - 1).clamp(0, last)

    def forward(self, batch: dict) -> torch.Tensor:
        """(B, 1, P * C): P(hidden state of the target event | the user's whole history), in the
        block of the target's period."""
        if "history" not in batch:
            raise ValueError("model=oracle is evaluation-only: it needs each target's full history")
        group = self.user_group[batch["user"]]
        rows = batch["user"].numel()
        items, counts = padded_history(batch["history"], rows)
        times, _ = padded_history(torch.stack([batch["history"][0], batch["history_time"]]), rows)
        period = self.period_of(times)
        emission = self.heads.emission
        predictive = self.initial[group]  # P(state of the next event | events so far)
        # one step per history position, vectorised over the batch (a forward pass, like an RNN)
        for t in range(items.size(1)):
            posterior = predictive * emission[period[:, t], :, items[:, t]]
            posterior = posterior / posterior.sum(-1, keepdim=True)
            step = torch.bmm(posterior.unsqueeze(1), self.transition[period[:, t], group]).squeeze(1)
            predictive = torch.where((t < counts).unsqueeze(1), step, predictive)
        placed = predictive.new_zeros(rows, emission.size(0), predictive.size(1))
        placed[torch.arange(rows), self.period_of(batch["target_time"])] = predictive
        return placed.flatten(1).unsqueeze(1)
