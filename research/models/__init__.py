"""Sequence models. Every model honours one small interface, so tests and entry points pick
up a new model from its config file alone:

    model = Model(meta=DatasetMeta, **hyper_parameters)
    model.supported_tasks : frozenset[str]      names of the tasks it can be trained/evaluated on
    model(batch) -> (B, L, H)                    a representation at every position; position t
                                                 depends only on events 0..t (causal)
    model.heads.item_scores(h, items) -> (n, B)  (B, H) outputs scored against `items` (a slice or
                                                 ids), item-major; item 0 (padding) scores -inf
    model.heads.category_logits(h) -> (..., C+1) scores of every category (column 0 = padding, -inf)
    model.heads.item_table -> (N+1, D') or None  item vectors, for the item losses (D' = D, or D+1
                                                 with a per-item bias as the last column)
    model.heads.query(h) -> (..., D')            h as scored against item_table (a 1 appended
                                                 for the bias column)
    Model.causal = True                          False: bidirectional; only the last output
                                                 predicts (tests then check what it hides)
    Model.reads_window = True                    False: reads whole histories, not the window

Batches hold left-padded (B, L) `items`, `categories`, `behaviors` (0 = padding).

Optional capabilities are declared by the protocols below (runtime-checkable: the framework
and the tests find them with isinstance, never by probing for a name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

SEQUENCE_TASKS = frozenset({"next_item", "next_category", "multi_task"})  # the tasks on event windows (not ctr)


@runtime_checkable
class OwnObjective(Protocol):
    """Trains on an objective of its own: turns a next-event training window into its own
    training batch (BERT4Rec's cloze). The module calls it before every training forward."""

    def training_batch(self, batch: dict) -> dict: ...


@runtime_checkable
class Recurrent(Protocol):
    """Advances one event at a time from a carried state: O(1) per event for real-time
    tracking (research/tracking.py); the same output as the forward pass in eval mode."""

    def step(self, batch: dict, state: Any) -> tuple[Any, Any]: ...


@runtime_checkable
class EncodesLatest(Protocol):
    """Computes the output at each row's latest position alone, `latest(batch) -> (B, H)`, equal
    to `model(batch)[:, -1]` in eval mode but cheaper (the Transformers' last layer attends from
    that position only). Evaluation uses it; every model without it pays for the full pass."""

    def latest(self, batch: dict) -> Any: ...


@runtime_checkable
class DeclaresCausality(Protocol):
    """Says whether its output at a position depends on earlier events only. Models without the
    attribute are causal; `causal = False` (BERT4Rec's bidirectional attention, BSARec's
    frequency filter) means only a row's last output predicts: such a model trains on an
    objective of its own (OwnObjective) or on one target per row (task.train_rows=prefixes)."""

    causal: bool


def is_causal(model: Any) -> bool:
    return not isinstance(model, DeclaresCausality) or model.causal


def latest_output(model: Any, batch: dict) -> Any:
    """(B, H) each row's output at its latest event (left padding puts it last), as cheaply as
    the model can give it: evaluation, the tracker and the figures all read it here."""
    return model.latest(batch) if isinstance(model, EncodesLatest) else model(batch)[:, -1]


@dataclass(frozen=True)
class FitData:
    """What a model fitted outside gradient descent learns from: the processed events (users'
    events contiguous, in time order) and user attributes (polars frames), each user's first
    event row, the label of every event row (its category), and the rows that are training and
    validation targets."""

    events: Any
    users: Any
    offsets: Any  # (U+1,) tensor
    labels: Any  # (E,) tensor
    train_rows: Any  # (K,) tensor of event rows
    val_rows: Any


@runtime_checkable
class FittedOnData(Protocol):
    """Fitted outside gradient descent (the tree models): `fit_data` fits on the training rows
    and returns files to keep beside the run (name -> text)."""

    def fit_data(self, data: FitData) -> dict[str, str]: ...
