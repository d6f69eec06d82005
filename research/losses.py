"""Training losses. Item losses take the model's outputs at the positions that have a target,
the target ids and the model's heads, so sampled variants score a subset of items only:

    item_loss = Loss(meta, **hyper_parameters)
    item_loss(h (M, D), targets (M,), heads) -> (M,) one loss per target
    category_loss(logits (M, C+1), targets (M,)) -> (M,)

Each item loss scores `heads.query(h)` against rows of `heads.item_table` (the outputs with a 1
appended against the item vectors with their bias, when the heads learn one), so a score is the
same dot product in every loss and in evaluation.

Losses return one value per target: how targets are weighed into a batch's loss is one
stated choice of the module (`loss.weighting`), the same for every loss. Under mixed precision
the scores' matrix products run in bf16, but every loss takes its scores in fp32 before it
corrects, exponentiates or sums them (bf16 spaces values near 10 by 0.06), in float32 on
every device (CPU autocast leaves softplus in bf16, CUDA's does not). Negatives are drawn
on the query's device, for the whole batch at once. A sampled negative that equals the row's
target (an accidental hit) is removed from that row's loss. A loss reads the model's scoring
table once per call, so under `model.item_dropout` the target and the negatives of a step are
scored against the same dropped table (an item drawn as a negative is the same vector as when it
is a target).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from research.bounds import UNIT, Count, Rate
from research.data.schema import DatasetMeta
from research.sampling import item_weights


def item_scores(query: torch.Tensor, table: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """query (M, D), table (N+1, D), items (M, k) or (k,) ids -> (M, k) dot-product scores. Rows
    are gathered by F.embedding: its backward sums into the table about twice as fast on CPU as
    indexing's (M = 2,000 targets, k = 256: 0.4 s against 0.8 s a batch, forward and backward)."""
    rows = F.embedding(items, table)  # (M, k, D) or (k, D)
    if items.dim() == 1:
        return query @ rows.T
    return torch.bmm(rows, query.unsqueeze(2)).squeeze(2)


class FullSoftmaxCE(nn.Module):
    """Cross-entropy over the whole catalogue (the loss behind the strong SASRec results of
    Klenitskiy & Vasilev, RecSys 2023)."""

    def __init__(self, meta: DatasetMeta | None = None):
        super().__init__()

    def forward(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        # score real items only (row 0 of the table is padding): no (M, N+1) masked copy
        logits = heads.query(h) @ heads.item_table[1:].T  # (M, N)
        return F.cross_entropy(logits.float(), targets - 1, reduction="none")


class SampledSoftmaxCE(nn.Module):
    """Softmax over the target and `num_negatives` items drawn by training popularity or
    uniformly, with the logQ correction (Bengio & Senecal, 2008; Yi et al., RecSys 2019): each
    negative's logit is lowered by the log of its expected count k * Q(item), so the sampled sum
    estimates the full softmax's partition function. The target enters once, uncorrected, and
    its accidental copies among the negatives are dropped, so the loss tends to the full
    cross-entropy as k grows.

    `shared_negatives=true`: one set of k negatives for the whole batch (one (M, k) matrix
    product); `false`: k negatives drawn for every position, as eSASRec / RecTools (Klenitskiy
    et al., 2024), less correlated gradients at the cost of gathering (M, k, D) embeddings."""

    def __init__(self, meta: DatasetMeta, num_negatives: Count = 256, distribution: str = "popularity",
                 log_q_correction: bool = True, shared_negatives: bool = True):
        super().__init__()
        weights = item_weights(meta.train_item_counts, distribution, "sampled softmax")
        weights = torch.cat([weights.new_zeros(1), weights])  # (N+1,): padding is never drawn
        q = weights / weights.sum()
        self.num_negatives, self.log_q_correction = num_negatives, log_q_correction
        self.shared_negatives = shared_negatives
        self.register_buffer("q", q.float(), persistent=False)
        self.register_buffer("log_expected", (num_negatives * q).clamp(min=1e-30).log().float(), persistent=False)

    def forward(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        if self.shared_negatives:
            negatives = torch.multinomial(self.q, self.num_negatives, replacement=True)  # (k,)
            hits = negatives.unsqueeze(0) == targets.unsqueeze(1)  # (M, k)
        else:
            draws = torch.multinomial(self.q, targets.numel() * self.num_negatives, replacement=True)
            negatives = draws.view(targets.numel(), self.num_negatives)  # (M, k)
            hits = negatives == targets.unsqueeze(1)
        query, table = heads.query(h), heads.item_table
        logits = torch.cat([item_scores(query, table, targets.unsqueeze(1)),
                            item_scores(query, table, negatives)], 1).float()
        if self.log_q_correction:
            logits[:, 1:] -= self.log_expected[negatives]
        hits = torch.cat([torch.zeros_like(targets, dtype=torch.bool).unsqueeze(1), hits], 1)
        return F.cross_entropy(logits.masked_fill(hits, float("-inf")), torch.zeros_like(targets), reduction="none")


class _PerRowNegatives(nn.Module):
    """`num_negatives` uniform items per row (the original SASRec / gSASRec sampling)."""

    def __init__(self, meta: DatasetMeta, num_negatives: Count):
        super().__init__()
        self.num_items, self.num_negatives = meta.num_items, num_negatives

    def scores(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module):
        """-> positive scores (M,), negative scores (M, k), valid (M, k) (False at accidental hits)."""
        negatives = torch.randint(1, self.num_items + 1, (targets.numel(), self.num_negatives), device=targets.device)
        query, table = heads.query(h), heads.item_table
        positive = (query * F.embedding(targets, table)).sum(-1)
        return positive.float(), item_scores(query, table, negatives).float(), negatives != targets.unsqueeze(1)


class SampledBCE(_PerRowNegatives):
    """Binary cross-entropy on the target (1) and `num_negatives` uniform items (0): the
    original SASRec objective (Kang & McAuley, ICDM 2018) with one negative."""

    def __init__(self, meta: DatasetMeta, num_negatives: Count = 1):
        super().__init__(meta, num_negatives)

    def forward(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        positive, negative, valid = self.scores(h, targets, heads)
        return F.softplus(-positive) + (F.softplus(negative) * valid).sum(1)


class BPR(_PerRowNegatives):
    """Bayesian personalised ranking (Rendle et al., UAI 2009): -log sigmoid(s+ - s-), averaged
    over each row's valid negatives."""

    def __init__(self, meta: DatasetMeta, num_negatives: Count = 1):
        super().__init__(meta, num_negatives)

    def forward(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        positive, negative, valid = self.scores(h, targets, heads)
        pairs = F.softplus(negative - positive.unsqueeze(1)) * valid  # -log sigmoid(s+ - s-)
        return pairs.sum(1) / valid.sum(1).clamp(min=1)


class GBCE(_PerRowNegatives):
    """Generalised BCE of gSASRec (Petrov & Macdonald, RecSys 2023): the positive's probability
    is raised to beta = alpha * (t * (1 - 1/alpha) + 1/alpha), alpha = k / (N - 1) the sampling
    rate, which undoes the over-confidence that negative sampling induces. t = 0 gives BCE."""

    def __init__(self, meta: DatasetMeta, num_negatives: Count = 256, t: Annotated[float, UNIT] = 0.75):
        super().__init__(meta, num_negatives)
        if not UNIT.admits(t):
            raise ValueError(f"gBCE: t must be {UNIT}, got {t}")
        alpha = num_negatives / max(meta.num_items - 1, 1)
        self.beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)

    def forward(self, h: torch.Tensor, targets: torch.Tensor, heads: nn.Module) -> torch.Tensor:
        positive, negative, valid = self.scores(h, targets, heads)
        # -log(sigmoid(s)^beta) = beta * softplus(-s)
        return self.beta * F.softplus(-positive) + (F.softplus(negative) * valid).sum(1)


class CategoryCE(nn.Module):
    """Cross-entropy over categories, with optional label smoothing (Szegedy et al., 2016)."""

    def __init__(self, label_smoothing: Rate = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # drop the padding column so smoothing mass never goes to it
        return F.cross_entropy(logits[:, 1:], targets - 1, label_smoothing=self.label_smoothing, reduction="none")



WEIGHTINGS = ("target", "window", "batch")


def weigh(values: torch.Tensor, mask: torch.Tensor, weighting: str, targets_per_batch: float) -> torch.Tensor:
    """One batch's loss from per-target values (M,) at the True positions of mask (B, L):

    - `target`: every training target weighs the same over the epoch: the sum divided by the
      epoch's mean number of targets per batch (a constant), whatever the batch holds;
    - `window`: every training row (a user's window) weighs the same: the mean over its
      targets, then the mean over the batch's rows (per user, for users of one window);
    - `batch`: the mean over the batch's targets, so a target's weight depends on how many
      targets its batch happens to hold (what a plain mean does)."""
    if weighting == "target":
        return values.sum() / targets_per_batch
    if weighting == "window":
        per_row = mask.sum(1, keepdim=True).clamp(min=1).to(values.dtype).expand(mask.shape)[mask]  # (M,)
        return (values / per_row).sum() / mask.size(0)
    return values.mean()
