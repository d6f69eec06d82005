"""The canonical event log every builder produces, and the metadata models receive.

A builder returns a `RawLog` whose `events` frame has these columns (raw ids of any type):
    user_id, item_id, category_id : raw identifiers
    timestamp                     : Int64, orders a user's events (ties broken by `order`)
    order                         : Int64, the event's position in the source (stable tie-break)
    behavior                      : optional Utf8 (pv/cart/fav/buy ...)
    state                         : optional, the simulator's true hidden category (raw category id)
Preprocessing turns it into dense ints with 0 reserved for padding (see transforms.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl
import torch

REQUIRED_COLUMNS = ("user_id", "item_id", "category_id", "timestamp", "order")
OPTIONAL_COLUMNS = ("behavior", "state")


class BadInput(ValueError):
    """A malformed or unusable source: the message names the file (and line, column) and what
    was expected. Entry points print it as one line."""


@dataclass
class RawLog:
    """What a builder returns: events, optional user profiles, and builder-specific facts."""

    events: pl.DataFrame
    users: pl.DataFrame | None = None
    info: dict = field(default_factory=dict)
    # writes files the builder wants kept beside the processed data (simulator parameters)
    save_artefacts: Callable[[Path], None] | None = None


class Builder(Protocol):
    """A dataset source. `fingerprint` must change whenever `load` would return other data."""

    name: str

    def fingerprint(self) -> dict: ...

    def load(self) -> RawLog: ...


@runtime_checkable
class StagingBuilder(Builder, Protocol):
    """A builder of logs too large for memory: writes typed events under `directory` and
    returns a lazy scan of them (the cache then builds from the scan, never holding the log)."""

    def stage(self, directory: Path) -> RawLog: ...


@dataclass(frozen=True)
class DatasetMeta:
    """Facts about the built dataset that models may need; passed explicitly by the entry point.

    Ids are dense and 1-based; index 0 is padding in every table below.
    """

    name: str
    num_items: int
    num_categories: int
    num_behaviors: int
    item_category: torch.Tensor  # (num_items + 1,) category of each item, 0 for padding
    train_item_counts: torch.Tensor  # (num_items + 1,) target counts in the training split only
    train_category_counts: torch.Tensor  # (num_categories + 1,) likewise
    category_names: tuple[str, ...]  # raw id of category 1..C
    artefact_dir: Path | None = None
