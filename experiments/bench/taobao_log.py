"""A Taobao UserBehavior-format log of any size, made by the simulator, for the benchmarks.

    python experiments/bench/taobao_log.py --rows 100000000 --out outputs/bench/taobao_100000000.csv

No header; user_id,item_id,category_id,behavior,timestamp like the public file. Written in
chunks of `--chunk` rows (each chunk an independent simulated population with its own user,
item and category ids), so memory stays bounded at any size. Like the public file it holds
rows outside its 9-day range (every 1,000th row, 40 days early) and exact duplicate rows
(every 997th row repeated), which preprocessing must drop and count.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl

FIRST, LAST = 1_511_539_200, 1_512_316_800  # the Taobao file's range, 2017-11-24T16:00Z .. 2017-12-03T16:00Z
STRAY_EVERY, DUPLICATE_EVERY = 1000, 997


def chunk(rows: int, index: int) -> pl.DataFrame:
    from research.data.simulator import simulate

    users, items, categories = max(rows // 60, 10), max(rows // 25, 1000), 100
    sim = simulate(num_users=users, num_items=items, num_categories=categories, mean_events=60, min_events=1,
                   max_events=2000, start_time=0, seed=index)
    events = sim.events.head(rows)
    # squeeze the simulated clock into the file's 9 days (order kept); ids offset per chunk
    ts = events["timestamp"].to_numpy().astype(np.float64)
    ts = FIRST + (ts - ts.min()) / max(ts.max() - ts.min(), 1) * (LAST - FIRST - 1)
    return events.select(
        pl.col("user_id") + index * users, pl.col("item_id") + index * items,
        pl.col("category_id") + index * categories, "behavior", pl.Series("timestamp", ts.astype(np.int64)))


def write_log(path: Path, rows: int, chunk_rows: int = 5_000_000) -> None:
    """Writes `rows` rows (plus the duplicates) to `path` atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    written = 0
    with open(tmp, "wb") as f:
        for index in range((rows + chunk_rows - 1) // chunk_rows):
            events = chunk(min(chunk_rows, rows - written), index)
            position = np.arange(written, written + events.height)
            stray = np.where(position % STRAY_EVERY == 0, -40 * 86_400, 0)
            events = events.with_columns(pl.col("timestamp") + pl.Series(stray))
            repeat = np.where(position % DUPLICATE_EVERY == 0, 2, 1)  # the row and its exact copy
            events = events.gather(np.repeat(np.arange(events.height), repeat))
            events.write_csv(f, include_header=False)
            written += int(position.size)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chunk", type=int, default=5_000_000)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_log(args.out, args.rows, args.chunk)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
