"""Pure polars steps from a raw log to dense, chronologically ordered, filtered events.

Every step that drops rows reports how many in the returned `report` dict; nothing is
dropped silently.
"""

from __future__ import annotations

import logging

import polars as pl

from research.data.schema import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

log = logging.getLogger(__name__)


def check_columns(events: pl.DataFrame, source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    if events.height == 0:
        raise ValueError(f"{source}: no events")


def clean(events: pl.DataFrame, report: dict) -> pl.DataFrame:
    """Drop rows with a missing id/timestamp/behaviour and exact duplicate events, counting both."""
    key = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in events.columns and c != "order"]
    n0 = events.height
    # a behaviour column, when present, must be complete: a null would become its own id
    events = events.drop_nulls(subset=[c for c in (*REQUIRED_COLUMNS, "behavior") if c in events.columns])
    report["dropped_malformed"] = n0 - events.height
    n1 = events.height
    # keep the first occurrence in source order so the surviving `order` is deterministic
    events = events.sort("order").unique(subset=key, keep="first", maintain_order=True)
    report["dropped_duplicates"] = n1 - events.height
    return events


def filter_short_users(events: pl.DataFrame, min_events: int, report: dict) -> pl.DataFrame:
    """Leave-one-out needs a validation and a test target plus history: min_events >= 3."""
    counts = events.group_by("user_id").len()
    keep = counts.filter(pl.col("len") >= min_events)
    report["dropped_short_users"] = counts.height - keep.height
    report["dropped_short_user_events"] = int(counts["len"].sum() - keep["len"].sum())
    return events.join(keep.select("user_id"), on="user_id", how="semi")


def dense_ids(values: pl.Series, start: int) -> pl.DataFrame:
    """Map sorted distinct raw values to start, start+1, ... (deterministic for a given set)."""
    raw = values.unique().sort()
    return pl.DataFrame({"raw": raw, "dense": pl.int_range(start, start + raw.len(), eager=True, dtype=pl.Int32)})


def item_categories(events: pl.DataFrame) -> pl.DataFrame:
    """One category per item: its most frequent category in the log (ties: smallest raw id)."""
    return (
        events.group_by("item_id", "category_id")
        .len()
        .sort(["item_id", "len", "category_id"], descending=[False, True, False])
        .unique(subset="item_id", keep="first", maintain_order=True)
        .select("item_id", "category_id")
    )


def densify(events: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Remap users to 0..U-1, items and categories (and behaviours) to 1..N (0 = padding).

    Returns the dense, sorted events and the id maps (raw -> dense) for each field.
    """
    cat_of_item = item_categories(events)
    maps = {
        "user": dense_ids(events["user_id"], 0),
        "item": dense_ids(events["item_id"], 1),
        # categories are item-level: only those that are some item's category get an id
        "category": dense_ids(cat_of_item["category_id"], 1),
    }
    items = (
        maps["item"]
        .join(cat_of_item.rename({"item_id": "raw"}), on="raw", how="left")
        .join(maps["category"].rename({"raw": "category_id", "dense": "category"}), on="category_id", how="left")
        .select("raw", "dense", "category")
    )
    maps["item"] = items
    out = events.join(maps["user"].rename({"raw": "user_id", "dense": "user"}), on="user_id")
    out = out.join(items.rename({"raw": "item_id", "dense": "item"}), on="item_id")
    columns = [pl.col("user"), pl.col("item"), pl.col("category"), pl.col("timestamp"), pl.col("order")]
    if "behavior" in out.columns:
        maps["behavior"] = dense_ids(out["behavior"], 1)
        out = out.join(maps["behavior"].rename({"raw": "behavior", "dense": "behavior_id"}), on="behavior")
        columns.append(pl.col("behavior_id").alias("behavior"))
    if "state" in out.columns:
        # the hidden state lives in category space: map it with the same table
        states = maps["category"].rename({"raw": "state", "dense": "state_id"})
        out = out.join(states, on="state", how="left")
        columns.append(pl.col("state_id").fill_null(0).alias("state"))
    out = out.select(columns).sort(["user", "timestamp", "order"])
    return out, maps
