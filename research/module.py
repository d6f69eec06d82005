"""The LightningModules, one per kind of task (research/tasks.py picks it). What they share
(the model, the optimiser and its schedule, logging the validation/test metrics) is
`RecModule`; each kind adds its training loss and how it evaluates a batch.

`SequenceRecModule` (next item / next category): training computes item logits only at
positions that have a target; evaluation scores the last position of each row against the
whole catalogue and logs every metric overall and per migration slice.

`ClickThroughModule` (the DIEN protocol): (history, target, label) examples, a logit per
example (plus the model's optional auxiliary loss), binary cross-entropy, AUC / GAUC / log-loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning.pytorch as L
import torch
from torch import nn
from torch.nn import functional as F

from research import metrics
from research.errors import IncompatibleConfig
from research.losses import WEIGHTINGS, weigh
from research.migration import MigrationLatency
from research.models import OwnObjective, latest_output
from research.ranking import rank_all_items

if TYPE_CHECKING:
    from research.tasks import Task


class RecModule(L.LightningModule):
    """What every task's module shares: the model, its optimiser and schedule, and the
    validation/test metrics, logged at the end of each evaluation epoch."""

    def __init__(self, model: nn.Module, task: Task, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
                 new_metric: Callable[[], nn.Module]):
        super().__init__()
        self.model, self.task = model, task
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.eval_metrics = nn.ModuleDict({s: new_metric() for s in ("val", "test")})
        self.category_reports: dict[str, dict[str, torch.Tensor]] = {}  # per-category test report, where made

    def _evaluate(self, batch: dict, split: str) -> None:
        raise NotImplementedError

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.model.parameters())

    def _epoch_results(self, split: str) -> dict[str, torch.Tensor]:
        metric = self.eval_metrics[split]
        results = metric.compute()
        metric.reset()
        return results

    def _log_results(self, split: str) -> None:
        self.log_dict({f"{split}/{k}": v for k, v in self._epoch_results(split).items()}, prog_bar=False)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_results("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_results("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        # stepped every optimiser step; schedules that need a horizon get the trainer's estimate
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class SequenceRecModule(RecModule):
    """Next item and/or next category (research.tasks.NextEvent)."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        item_loss: nn.Module,
        category_loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        item_category: torch.Tensor,
        ks: tuple[int, ...] = (5, 10, 20),
        mask_history: bool = True,
        migration_latency: bool = False,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        loss_weighting: str = "target",
        targets_per_batch: float = 1.0,
        scores_per_chunk: int | None = None,
    ):
        if loss_weighting not in WEIGHTINGS:
            raise IncompatibleConfig(f"loss.weighting must be one of {', '.join(WEIGHTINGS)}, got '{loss_weighting}'")
        num_categories = int(item_category.max())
        super().__init__(model, task, optimizer, scheduler, lambda: metrics.SlicedMetrics(num_categories))
        self.num_categories = num_categories
        self.loss_weighting, self.targets_per_batch = loss_weighting, targets_per_batch
        self.item_loss, self.category_loss = item_loss, category_loss
        self.ks, self.mask_history, self.scores_per_chunk = tuple(ks), mask_history, scores_per_chunk
        self.register_buffer("item_category", item_category, persistent=False)
        self.migration = nn.ModuleDict({s: MigrationLatency() for s in ("val", "test")}) if migration_latency else None

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if isinstance(self.model, OwnObjective):
            batch = self.model.training_batch(batch)
        h = self.model(batch)  # (B, L, H)
        loss = h.new_zeros(())
        if self.task.item_weight > 0:
            mask = batch["target_items"] > 0
            item = weigh(self.item_loss(h[mask], batch["target_items"][mask], self.model.heads), mask,
                         self.loss_weighting, self.targets_per_batch)
            loss = loss + self.task.item_weight * item
            self.log("train/item_loss", item, on_step=False, on_epoch=True)
        if self.task.category_weight > 0:
            mask = batch["target_categories"] > 0
            logits = self.model.heads.category_logits(h[mask])
            category = weigh(self.category_loss(logits, batch["target_categories"][mask]), mask,
                             self.loss_weighting, self.targets_per_batch)
            loss = loss + self.task.category_weight * category
            self.log("train/category_loss", category, on_step=False, on_epoch=True)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def next_category_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """(B, C+1) log P(next category) from each row's latest output, exactly as evaluation
        computes it (for the tracker and the figures)."""
        return self._rank(h, None, None, categories=True)[1]

    def _rank(self, h: torch.Tensor, targets: torch.Tensor | None, history: torch.Tensor | None,
              categories: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Each target's rank among all items (None without targets) and, if `categories`, the
        (B, C+1) next-category log-probabilities: from the category head where one is trained,
        else the item distribution marginalised over each category's items."""
        marginal = categories and self.task.category_weight <= 0  # then the task ranks items (NextEvent)
        ranks = log_probs = None
        if targets is not None or marginal:
            ranking = rank_all_items(self.model.heads, h, targets, self.item_category.numel() - 1, history=history,
                                     item_category=self.item_category if marginal else None,
                                     num_categories=self.num_categories, scores_per_chunk=self.scores_per_chunk)
            ranks, log_probs = ranking.ranks, ranking.category_log_probs
        if categories and not marginal:
            log_probs = torch.log_softmax(self.model.heads.category_logits(h), dim=-1)
        return ranks, log_probs

    def _evaluate(self, batch: dict, split: str) -> None:
        h = latest_output(self.model, batch).float()  # (B, H)
        # scores in full precision even under mixed precision: bf16 would tie many items, and
        # ties count against the target
        with torch.autocast(device_type=h.device.type, enabled=False):
            self._score(batch, h, split)

    def _score(self, batch: dict, h: torch.Tensor, split: str) -> None:
        metric = self.eval_metrics[split]
        # the category distribution only where something reads it
        categories = metric.by_category or self.migration is not None
        targets = batch["target_item"] if self.task.ranks_items else None
        ranks, log_probs = self._rank(h, targets, batch["history"] if self.mask_history else None, categories)
        values = {} if ranks is None else metrics.ranking_values(ranks, self.ks)
        if metric.by_category:
            values |= metrics.category_values(log_probs, batch["target_category"])
            metric.update(values, batch["is_shift"], log_probs.argmax(1), batch["target_category"])
        else:
            metric.update(values, batch["is_shift"])
        if self.migration is not None:
            if "target_state" not in batch:
                raise IncompatibleConfig("eval.migration_latency needs the simulator's hidden states (data=synthetic)")
            self.migration[split].update(batch["user"], batch["target_position"], log_probs.argmax(1),
                                         batch["target_state"], batch["previous_state"])

    def _epoch_results(self, split: str) -> dict[str, torch.Tensor]:
        metric = self.eval_metrics[split]
        if split == "test" and metric.by_category:
            self.category_reports[split] = metric.category_report()
        results = super()._epoch_results(split)
        if self.migration is not None:
            results |= {f"migration/{k}": v for k, v in self.migration[split].compute().items()}
            self.migration[split].reset()
        return results


class ClickThroughModule(RecModule):
    """Click-through examples (research.tasks.ClickThrough)."""

    def __init__(self, model: nn.Module, task: Task, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None):
        super().__init__(model, task, optimizer, scheduler, metrics.CTRMetrics)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.model(batch)
        loss = F.binary_cross_entropy_with_logits(out.logits, batch["label"])
        self.log("train/ctr_loss", loss, on_step=False, on_epoch=True)
        if out.aux_loss is not None:
            self.log("train/aux_loss", out.aux_loss, on_step=False, on_epoch=True)
            loss = loss + out.aux_weight * out.aux_loss
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: dict, split: str) -> None:
        self.eval_metrics[split].update(self.model(batch).logits, batch["label"], batch["user"])
