"""What is predicted, from which examples, and what early stopping watches. A task owns what
differs between kinds of task: the rows its data is cut into (`datasets`), the module that
trains and evaluates on them (`module`: its loss and metrics), and the facts the entry points
check before anything is built. A new kind of task is a class here and a file in conf/task/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn

from research.bounds import NON_NEGATIVE, Seed
from research.data.ctr import CTRExamples, NegativeSampler, training_targets
from research.data.schema import DatasetMeta
from research.data.sequences import EvalTargets, EventStore, TrainPrefixes, TrainWindows
from research.data.splits import Split
from research.errors import IncompatibleConfig
from research.models import OwnObjective, is_causal
from research.module import ClickThroughModule, RecModule, SequenceRecModule

Weight = Annotated[float, NON_NEGATIVE]
TRAIN_ROWS = {"windows": TrainWindows, "prefixes": TrainPrefixes}  # NextEvent.train_rows


@dataclass(frozen=True)
class Task:
    name: str  # matched against model.supported_tasks
    monitor: str  # validation metric for checkpointing / early stopping
    mode: Literal["max", "min"] = "max"

    # what the entry points ask before building anything
    @property
    def ranks_items(self) -> bool:
        """Item ranking metrics (hit@k, ndcg@k, ...) are computed."""
        return False

    @property
    def predicts_categories(self) -> bool:
        """Trains or watches a category prediction (needs data with more than one category)."""
        return "category" in self.monitor

    def unused_item_loss(self) -> str | None:
        """Why an item loss would never be used by this task; None when it trains one."""
        raise NotImplementedError

    def datasets(self, store: EventStore, split: Split, meta: DatasetMeta, max_len: int,
                 slice_window: int) -> tuple[Any, Any, Any]:
        """The (train, validation, test) datasets the task's rows are cut into."""
        raise NotImplementedError

    def module(self, model: nn.Module, **parts) -> RecModule:
        """The LightningModule that trains and evaluates the model on this task."""
        raise NotImplementedError


@dataclass(frozen=True)
class NextEvent(Task):
    """The next event of a sequence: next item, next category, or both from one encoder.
    Training rows are windows with a target at every position (`train_rows="windows"`) or one
    row per target (`"prefixes"`, as RecBole and BSARec train); evaluation rows one target each."""

    item_weight: Weight = 1.0  # weight of the item loss (0: no item head trained, no item metrics)
    category_weight: Weight = 0.0  # weight of the category loss (0: categories derived from item scores)
    train_rows: Literal["windows", "prefixes"] = "windows"

    def __post_init__(self):
        if self.item_weight <= 0 and self.category_weight <= 0:
            raise IncompatibleConfig(f"task {self.name}: item_weight or category_weight must be > 0")

    @property
    def ranks_items(self) -> bool:
        return self.item_weight > 0

    @property
    def predicts_categories(self) -> bool:
        return self.category_weight > 0 or super().predicts_categories

    def unused_item_loss(self) -> str | None:
        return None if self.item_weight > 0 else f"task {self.name} trains no item scores (task.item_weight=0)"

    def datasets(self, store, split, meta, max_len, slice_window):
        return (TRAIN_ROWS[self.train_rows](store, split.train_end, max_len, split.train_from),
                EvalTargets(store, split.val, max_len, slice_window),
                EvalTargets(store, split.test, max_len, slice_window))

    def module(self, model: nn.Module, *, optimizer: Callable, scheduler: Callable | None, item_loss: nn.Module,
               category_loss: nn.Module, item_category: torch.Tensor, eval: Any, loss_weighting: str,
               targets_per_batch: float) -> SequenceRecModule:
        check_supported(model, self.name)
        if self.train_rows == "prefixes" and isinstance(model, OwnObjective):
            raise IncompatibleConfig(f"task.train_rows=prefixes: {type(model).__name__} trains on an objective of "
                                     "its own over whole windows (task.train_rows=windows)")
        if self.train_rows == "windows" and not is_causal(model) and not isinstance(model, OwnObjective):
            # a window's earlier targets would be predicted from outputs that saw them
            raise IncompatibleConfig(f"task.train_rows=windows: {type(model).__name__} is not causal (an output sees "
                                     "later events), so it trains on one target per row: task.train_rows=prefixes")
        return SequenceRecModule(model, self, item_loss, category_loss, optimizer, item_category, ks=tuple(eval.ks),
                                 mask_history=eval.mask_history, migration_latency=eval.migration_latency,
                                 scheduler=scheduler, loss_weighting=loss_weighting,
                                 targets_per_batch=targets_per_batch, scores_per_chunk=eval.scores_per_chunk)


@dataclass(frozen=True)
class ClickThrough(Task):
    """The DIEN protocol (Zhou et al., AAAI 2019): at every target position, the history before
    it with the true next item (label 1) and one item the user never interacted with (label 0);
    binary cross-entropy on the labels, AUC / GAUC / log-loss (research/data/ctr.py)."""

    # training negatives: by training popularity (as the DIEN data scripts) or uniform
    negatives: Literal["popularity", "uniform"] = "popularity"
    eval_seed: Seed = 0  # fixes validation/test negatives: every model and seed scores the same pairs

    def unused_item_loss(self) -> str | None:
        return (f"task {self.name} trains no item scores (a click-through task trains binary cross-entropy "
                "on its labels)")

    def datasets(self, store, split, meta, max_len, slice_window):
        sampler = NegativeSampler(store, meta.num_items, self.negatives, meta.train_item_counts)
        category = meta.item_category
        # training negatives are redrawn every batch; evaluation's are fixed by eval_seed
        return (CTRExamples(store, training_targets(store, split.train_end, split.train_from), max_len, sampler,
                            category),
                CTRExamples(store, split.val, max_len, sampler, category, self.eval_seed),
                CTRExamples(store, split.test, max_len, sampler, category, self.eval_seed + 1))

    def module(self, model: nn.Module, *, optimizer: Callable, scheduler: Callable | None, eval: Any,
               **ranking_parts) -> ClickThroughModule:
        # the item and category losses and the ranking settings are not used here (a loss option
        # other than the default is refused at compose time: research.config.check_objective)
        check_supported(model, self.name)
        if eval.migration_latency:
            raise IncompatibleConfig(f"eval.migration_latency needs a sequence task, not {self.name}")
        return ClickThroughModule(model, self, optimizer, scheduler=scheduler)


def check_supported(model: type | object, task: str) -> None:
    """One line naming the model, the task and what the model does support."""
    if task not in model.supported_tasks:
        name = model.__name__ if isinstance(model, type) else type(model).__name__
        raise IncompatibleConfig(f"model {name} does not support task '{task}' "
                                 f"(supported: {', '.join(sorted(model.supported_tasks))})")
