"""Raw events to dense, sorted, filtered events in bounded memory, for logs of any size.

The users are cut into contiguous ranges of raw user id holding about `rows_per_bucket` events
each (one streaming pass counts events per user). Every step that needs a user's whole history
(dropping duplicates, dropping short users) runs on one range at a time; the id maps need only
small per-range summaries (the users, the (item, category) counts, the behaviours). The dense
events of each range are then sorted and appended in range order, which is global user order
because dense user ids follow raw id order. A log that fits one bucket runs the same steps in
memory, so every dataset, small or huge, goes through this one path with the same result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from research.data import transforms
from research.data.schema import BadInput

log = logging.getLogger(__name__)

# The memory knob: peak grows by about 0.15 GiB per million rows of a range (a 10^8-row Taobao-like
# log: 2.1 GiB peak at 4M, 3.8 GiB at 16M; results/bench.md). A log within one range is processed
# in memory, without scratch files.
ROWS_PER_BUCKET = 16_000_000
# a local cache, rebuilt at will: lz4 wrote 10^7 events in 0.39 s here against zstd's 0.60 s
EVENTS_COMPRESSION = "lz4"


def user_ranges(counts: pl.DataFrame, rows_per_bucket: int) -> list[tuple]:
    """Inclusive (first, last) raw user ids of consecutive users whose events add up to about
    `rows_per_bucket` (a user is never split). counts: (user_id, len) sorted by user_id."""
    start = counts["len"].cum_sum() - counts["len"]
    ranges = (counts.with_columns((start // rows_per_bucket).alias("bucket"))
              .group_by("bucket", maintain_order=True)
              .agg(pl.col("user_id").first().alias("first"), pl.col("user_id").last().alias("last")))
    return list(zip(ranges["first"].to_list(), ranges["last"].to_list()))


def preprocess(events: pl.LazyFrame, min_user_events: int, events_path: Path, work: Path, source: str,
               rows_per_bucket: int | None = None) -> tuple[dict, dict[str, pl.DataFrame]]:
    """Writes the dense events to `events_path`; returns the build report and the id maps.
    `work` holds the per-range files (removed by the caller). `source` names the input in errors."""
    counts = events.group_by("user_id").len().collect(engine="streaming").sort("user_id")
    report = {"raw_events": int(counts["len"].sum())}
    if report["raw_events"] == 0:
        raise BadInput(f"{source}: no events")
    ranges = user_ranges(counts, rows_per_bucket or ROWS_PER_BUCKET)
    del counts
    in_memory = len(ranges) == 1
    if not in_memory:
        work.mkdir(parents=True, exist_ok=True)
        log.info("%s: %d events in %d user ranges", source, report["raw_events"], len(ranges))
    parts, users, pairs, behaviors = [], [], [], []
    for index, (first, last) in enumerate(ranges):
        part = (events if in_memory else events.filter(pl.col("user_id").is_between(first, last))).collect()
        steps: dict = {}
        part = transforms.clean(part, steps)
        part = transforms.filter_short_users(part, min_user_events, steps)
        for name, count in steps.items():
            report[name] = report.get(name, 0) + count
        users.append(part["user_id"].unique())
        pairs.append(transforms.pair_counts(part))
        if "behavior" in part.columns:
            behaviors.append(part["behavior"].unique())
        if in_memory:
            parts.append(part)
        else:
            parts.append(work / f"clean-{index:05d}.parquet")
            part.write_parquet(parts[-1], compression="lz4")  # scratch: fast beats small
        del part
    all_users = pl.concat(users)
    if all_users.len() == 0:  # every user was too short: the caller names the minimum
        report["events"] = 0
        return report, {}
    all_pairs = pl.concat(pairs).group_by("item_id", "category_id").agg(pl.col("len").sum())
    maps = transforms.id_maps(all_users, all_pairs, pl.concat(behaviors) if behaviors else None)
    if in_memory:
        dense = transforms.apply_maps(parts[0], maps)
        report["events"] = dense.height
        dense.write_parquet(events_path, compression=EVENTS_COMPRESSION)
        return report, maps
    # ranges are in raw user order, so appending them one by one gives events sorted by dense user
    writer, report["events"] = None, 0
    try:
        for path in parts:
            dense = transforms.apply_maps(pl.read_parquet(path), maps).to_arrow()
            writer = writer or pq.ParquetWriter(events_path, dense.schema, compression=EVENTS_COMPRESSION)
            writer.write_table(dense)
            report["events"] += dense.num_rows
            path.unlink()
    finally:
        if writer is not None:
            writer.close()
    return report, maps
