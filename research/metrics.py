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


def mask_seen(scores: torch.Tensor, history: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Exclude items the user interacted with before the target (set to -inf), except the
    target itself. scores: (B, N+1); history: (2, H) (row, item) pairs; targets: (B,)."""
    target_scores = scores.gather(1, targets.unsqueeze(1))
    scores = scores.index_put((history[0], history[1]), torch.tensor(float("-inf"), device=scores.device))
    return scores.scatter(1, targets.unsqueeze(1), target_scores)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, N) scores, (B,) targets -> (B,) 0-based pessimistic rank of each target."""
    target_scores = scores.gather(1, targets.unsqueeze(1))
    return (scores >= target_scores).sum(1) - 1


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
        "category_logloss": (-log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)).clamp(max=-math.log(1e-12)).double(),
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


class SlicedMetrics(Metric):
    """Collects per-example values (gathered across processes under DDP) and reports means
    overall and per migration slice, plus category macro-F1 and the slice sizes."""

    full_state_update = False

    def __init__(self, num_categories: int):
        super().__init__()
        self.num_categories = num_categories
        self.names: list[str] | None = None
        self.add_state("values", default=[], dist_reduce_fx="cat")  # (B, M) per batch
        self.add_state("is_shift", default=[], dist_reduce_fx="cat")
        self.add_state("category_pred", default=[], dist_reduce_fx="cat")
        self.add_state("category_target", default=[], dist_reduce_fx="cat")

    def update(self, values: dict[str, torch.Tensor], is_shift: torch.Tensor,
               category_pred: torch.Tensor, category_target: torch.Tensor) -> None:
        if self.names is None:
            self.names = list(values)
        self.values.append(torch.stack([values[n] for n in self.names], dim=1))
        self.is_shift.append(is_shift)
        self.category_pred.append(category_pred)
        self.category_target.append(category_target)

    def compute(self) -> dict[str, float]:
        values, is_shift = _cat(self.values), _cat(self.is_shift)
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
        return per_class_f1(_cat(self.category_pred), _cat(self.category_target), self.num_categories + 1)


def _cat(state) -> torch.Tensor:
    return torch.cat(state) if isinstance(state, list) else state
