"""Replay an event stream through a trained run's InterestTracker and write the stream of
interest states (one row per event: most likely next category, its probability, the migration
flag and the whole distribution).

    python -m research.track RUN_DIR [--events FILE.csv|.parquet] [--out FILE.parquet]
                             [--batch-size 1024] [--min-margin 0.1] [--limit N]

Without --events the run's own dataset is replayed (for the simulator, with each event's true
hidden interest beside the tracked one). An events file needs columns user_id, item_id and
timestamp (behavior optional), raw ids as in the run's data; events with items the run never
saw are dropped and counted. Events are fed in time order, in batches; a summary with the
throughput (events per second of tracker updates) is printed and written beside the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import fields
from pathlib import Path

import polars as pl
import torch

from research.cli import one_line_errors
from research.io import atomic_path
from research.tracking import InterestTracker, TrackerOutput

log = logging.getLogger(__name__)


def dataset_stream(datamodule) -> tuple[pl.DataFrame, dict]:
    """The run's processed events in global time order, in dense ids."""
    events = datamodule.data.events.sort(["timestamp", "order"], maintain_order=True)
    columns = [pl.col("user").alias("user_key"), "user", "item", "timestamp",
               pl.col("behavior") if "behavior" in events.columns else pl.lit(0).alias("behavior")]
    if "state" in events.columns:
        columns.append("state")
    return events.select(columns), {"dropped_unknown_items": 0}


def file_stream(path: Path, datamodule) -> tuple[pl.DataFrame, dict]:
    """An events file mapped to the run's dense item (and behaviour) ids."""
    if not path.is_file():
        raise SystemExit(f"error: {path}: no such file")
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in frame.columns]
    if missing:
        raise SystemExit(f"error: {path}: missing column(s) {missing}; "
                         f"expected user_id, item_id, timestamp[, behavior]")
    items = datamodule.data.items.select(pl.col("raw").alias("item_id"), pl.col("dense").alias("item"))
    try:
        frame = frame.with_columns(pl.col("item_id").cast(items["item_id"].dtype, strict=True),
                                   pl.col("timestamp").cast(pl.Int64, strict=True))
    except pl.exceptions.PolarsError as err:
        raise SystemExit(f"error: {path}: column item_id or timestamp has values of the wrong type ({err})") from None
    # any user id becomes an int64 key: integers as they are, anything else by a 64-bit hash
    user_key = (pl.col("user_id").cast(pl.Int64) if frame["user_id"].dtype.is_integer()
                else pl.col("user_id").hash().reinterpret(signed=True))
    frame = frame.with_row_index("order").with_columns(user_key.alias("user_key"))
    known = frame.join(items, on="item_id", how="inner", maintain_order="left")
    behavior = pl.lit(0).alias("behavior")
    if "behavior" in frame.columns and datamodule.data.behaviors is not None:
        behaviors = datamodule.data.behaviors.select(pl.col("raw").alias("behavior"), pl.col("dense").alias("b"))
        known = known.join(behaviors, on="behavior", how="left", maintain_order="left")
        behavior = pl.col("b").fill_null(0).alias("behavior")
    stream = known.sort(["timestamp", "order"], maintain_order=True).select(
        "user_key", pl.col("user_id").alias("user"), "item", "timestamp", behavior)
    dropped = frame.height - known.height
    if dropped:
        log.warning("%s: %d of %d events have items the run never saw: dropped", path, dropped, frame.height)
    return stream, {"dropped_unknown_items": dropped}


def replay(tracker: InterestTracker, stream: pl.DataFrame, batch_size: int) -> tuple[dict[str, torch.Tensor], float]:
    def column(name: str) -> torch.Tensor:
        return torch.from_numpy(stream[name].cast(pl.Int64).to_numpy().copy())

    keys, items, behaviors = column("user_key"), column("item"), column("behavior")
    parts: dict[str, list[torch.Tensor]] = {f.name: [] for f in fields(TrackerOutput)}
    seconds = 0.0
    for start in range(0, keys.numel(), batch_size):
        end = start + batch_size
        t0 = time.perf_counter()
        out = tracker.update(keys[start:end], items[start:end], behaviors[start:end])
        seconds += time.perf_counter() - t0
        for name, value in vars(out).items():
            parts[name].append(value)
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in parts.items()}, seconds


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--events", type=Path, help="csv or parquet; default: the run's own dataset")
    parser.add_argument("--out", type=Path, help="default: RUN_DIR/interest_states.parquet")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--min-margin", type=float, default=0.1)
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument("--checkpoint", default="best")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    tracker, datamodule = InterestTracker.from_run(args.run_dir, args.checkpoint, args.min_margin)
    stream, counts = file_stream(args.events, datamodule) if args.events else dataset_stream(datamodule)
    if args.limit:
        stream = stream.head(args.limit)
    out, seconds = replay(tracker, stream, args.batch_size)
    names = ["<none>", *datamodule.meta.category_names]
    name_of = pl.Series("name", names)
    result = stream.drop("user_key", "behavior").with_columns(
        name_of.gather(out["top"].numpy()).alias("top_category"),
        pl.Series("confidence", out["confidence"].numpy()),
        pl.Series("migrated", out["migrated"].numpy()),
        *(pl.Series(f"p[{n}]", out["distribution"][:, k].numpy()) for k, n in enumerate(names) if k),
    )
    if "state" in result.columns:
        result = result.with_columns(name_of.gather(result["state"].to_numpy()).alias("true_state")).drop("state")
    path = args.out or args.run_dir / "interest_states.parquet"
    with atomic_path(path) as tmp:
        result.write_parquet(tmp)
    summary = {"events": stream.height, "users": len(tracker.slots), "tracker_seconds": round(seconds, 3),
               "events_per_second": round(stream.height / seconds) if seconds else None,
               "migrations_flagged": int(out["migrated"].sum()) if stream.height else 0,
               "recurrent_state": tracker.recurrent, "batch_size": args.batch_size,
               "threads": torch.get_num_threads(), **counts, "output": str(path)}
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
