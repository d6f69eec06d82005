"""Evaluation metrics, vectorised over a batch, and an accumulator that reports every metric
overall and on the `stay` / `shift` migration slices (see MISSION.md).

Ranking: the target's 0-based rank among all items counts every other item scoring >= the
target (ties go against the model, so a constant scorer earns nothing). hit@K = [rank < K],
ndcg@K = 1/log2(rank + 2) if rank < K, mrr@K = 1/(rank + 1) if rank < K.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

SLICES = ("stay", "shift")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, N) scores, (B,) targets -> (B,) 0-based pessimistic rank of each target."""
    target_scores = scores.gather(1, targets.unsqueeze(1))
    # "not below the target" counts a NaN against it (a diverged model earns nothing); an int32
    # count: summing the (B, N) mask into int64 first copies it to 8 bytes per item (4x slower)
    return scores.size(1) - 1 - (scores < target_scores).sum(1, dtype=torch.int32).long()


def ranking_values(ranks: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    ranks = ranks.double()
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"hit@{k}"] = hit.double()
        out[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 2), 0.0)
        out[f"mrr@{k}"] = torch.where(hit, 1.0 / (ranks + 1), 0.0)
    return out


def category_values(log_probs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """log_probs: (B, C+1) normalised log-probabilities (column 0 padding), targets: (B,)."""
    ranks = target_ranks(log_probs, targets)
    return {
        "category_acc@1": (ranks < 1).double(),
        "category_acc@3": (ranks < 3).double(),
        # clamp: a model certain of the wrong class would otherwise give an infinite mean
        "category_logloss": (-log_probs.gather(1, targets.unsqueeze(1)).squeeze(1))
        .clamp(max=-math.log(1e-12)).double(),
    }


def per_class_f1(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """Precision, recall, F1 and support per class index (0..num_classes-1)."""
    tp = torch.bincount(targets[preds == targets], minlength=num_classes).double()
    predicted = torch.bincount(preds, minlength=num_classes).double()
    support = torch.bincount(targets, minlength=num_classes).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, tp / support.clamp(min=1), 0.0)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}


def macro_f1(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Mean F1 over the classes that occur as a target or a prediction (as scikit-learn)."""
    stats = per_class_f1(preds, targets, num_classes)
    present = (stats["support"] > 0) | (stats["predicted"] > 0)
    return float(stats["f1"][present].mean()) if bool(present.any()) else 0.0


def measures_categories(num_categories: int) -> bool:
    """Whether category metrics and the stay/shift slices say anything: with one category every
    target "stays" and every category guess is right, so they would only report the data's shape."""
    return num_categories >= 2


class SlicedMetrics(Metric):
    """Collects per-example values (gathered across processes under DDP) and reports means
    overall and per migration slice, plus category macro-F1 and the slice sizes."""

    full_state_update = False

    def __init__(self, num_categories: int):
        super().__init__()
        self.num_categories = num_categories
        self.by_category = measures_categories(num_categories)
        self.names: list[str] | None = None
        self.add_state("values", default=[], dist_reduce_fx="cat")  # (B, M) per batch
        self.add_state("is_shift", default=[], dist_reduce_fx="cat")
        self.add_state("category_pred", default=[], dist_reduce_fx="cat")
        self.add_state("category_target", default=[], dist_reduce_fx="cat")

    def update(self, values: dict[str, torch.Tensor], is_shift: torch.Tensor,
               category_pred: torch.Tensor | None = None, category_target: torch.Tensor | None = None) -> None:
        """The category prediction and target only where categories are measured (by_category)."""
        if self.names is None:
            self.names = list(values)
        self.values.append(torch.stack([values[n] for n in self.names], dim=1))
        self.is_shift.append(is_shift)
        if self.by_category:
            self.category_pred.append(category_pred)
            self.category_target.append(category_target)

    def compute(self) -> dict[str, float]:
        values, is_shift = _cat(self.values), _cat(self.is_shift)
        if not self.by_category:
            return {"count": float(values.size(0)),
                    **{name: float(values[:, i].mean()) for i, name in enumerate(self.names)}}
        pred, target = _cat(self.category_pred), _cat(self.category_target)
        out: dict[str, float] = {}
        for prefix, rows in (("", slice(None)), ("stay/", ~is_shift), ("shift/", is_shift)):
            v = values[rows]
            out[f"{prefix}count"] = float(v.size(0))
            for i, name in enumerate(self.names):
                out[f"{prefix}{name}"] = float(v[:, i].mean()) if v.size(0) else float("nan")
            out[f"{prefix}category_macro_f1"] = macro_f1(pred[rows], target[rows], self.num_categories + 1)
        return out

    def category_report(self) -> dict[str, torch.Tensor]:
        with self.sync_context(should_unsync=True):  # all ranks' examples under DDP
            return per_class_f1(_cat(self.category_pred), _cat(self.category_target), self.num_categories + 1)


def _cat(state) -> torch.Tensor:
    return torch.cat(state) if isinstance(state, list) else state


def grouped_auc(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ROC AUC within each group (Mann-Whitney U with average ranks for ties), vectorised.

    scores, labels (0/1), groups (dense ids 0..G-1): (n,) -> (auc (G,), size (G,)); a group
    without both classes has auc NaN."""
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # by group, then score
    g, s, y = groups[order], scores[order], labels[order].double()
    size = torch.bincount(groups).double()
    start = torch.cumsum(size, 0) - size
    position = torch.arange(g.numel(), dtype=torch.double) - start[g]  # 0-based within the group
    new_block = torch.ones_like(g, dtype=torch.bool)
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    block = torch.cumsum(new_block.long(), 0) - 1
    first = torch.zeros(int(block[-1]) + 1, dtype=torch.double).scatter_reduce(0, block, position, "amin",
                                                                               include_self=False)
    last = torch.zeros_like(first).scatter_reduce(0, block, position, "amax", include_self=False)
    rank = ((first + last) / 2 + 1)[block]  # 1-based average rank of tied scores
    positives = torch.zeros_like(size).index_add_(0, g, y)
    negatives = size - positives
    rank_sum = torch.zeros_like(size).index_add_(0, g, rank * y)
    auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return torch.where((positives > 0) & (negatives > 0), auc, float("nan")), size


def ctr_values(logits: torch.Tensor, labels: torch.Tensor, users: torch.Tensor) -> dict[str, float]:
    """`auc`, `gauc` (per-user AUC weighted by the user's number of examples, over users with
    both a positive and a negative, as in the DIN paper) and `logloss`."""
    auc, _ = grouped_auc(logits, labels, torch.zeros_like(users))
    _, dense_users = torch.unique(users, return_inverse=True)
    per_user, size = grouped_auc(logits, labels, dense_users)
    valid = ~per_user.isnan()
    gauc = ((per_user[valid] * size[valid]).sum() / size[valid].sum() if bool(valid.any())
            else torch.tensor(float("nan")))
    logloss = torch.nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double())
    return {"count": float(labels.numel()), "auc": float(auc[0]), "gauc": float(gauc), "logloss": float(logloss)}


class CTRMetrics(Metric):
    """Collects (logit, label, user) of every example (gathered across processes under DDP)."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("logits", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("users", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, users: torch.Tensor) -> None:
        self.logits.append(logits.float())
        self.labels.append(labels.float())
        self.users.append(users)

    def compute(self) -> dict[str, float]:
        return ctr_values(_cat(self.logits).cpu(), _cat(self.labels).cpu(), _cat(self.users).cpu())
