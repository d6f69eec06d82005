"""A Taobao UserBehavior-format log of any size, made by the simulator, for the benchmarks.

    python experiments/bench/taobao_log.py --rows 100000000 --out outputs/bench/taobao-100000000-v2/UserBehavior.csv

No header; user_id,item_id,category_id,behavior,timestamp like the public file, in its
proportions: UserBehavior.csv holds 100,150,807 events of 987,994 users on 4,162,024 items in
9,439 categories (101 events per user, 24 per item, 10,610 per category), 89.6% pv, 5.5% cart,
2.9% fav, 2.0% buy; at 10^8 rows this log has about 10^6 users, 4 x 10^6 items and 9,400
categories. Written in chunks of `--chunk` rows (each chunk an independent simulated
population with its own user, item and category ids), so memory stays bounded at any size. Like the public file it holds
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
EVENTS_PER_USER, EVENTS_PER_ITEM, EVENTS_PER_CATEGORY = 101, 24, 10_610  # UserBehavior.csv's
BEHAVIORS = {"pv": 89_716_264, "cart": 5_530_446, "fav": 2_888_258, "buy": 2_015_839}  # its counts
VERSION = 2  # 1: 60 events per user, 25 per item, 100 categories per chunk, 80/10/5/5 behaviours


def log_path(workdir: Path, rows: int) -> Path:
    """Where the benchmarks keep the log of `rows` rows: a folder that `data=taobao data.root=`
    reads, named by the generator's version so a log of an older one is never reused."""
    return workdir / f"taobao-{rows}-v{VERSION}" / "UserBehavior.csv"


def chunk(rows: int, index: int) -> pl.DataFrame:
    from research.data.simulator import simulate

    users, items = max(rows // EVENTS_PER_USER, 10), max(rows // EVENTS_PER_ITEM, 1000)
    categories = max(rows // EVENTS_PER_CATEGORY, 10)
    sim = simulate(num_users=users, num_items=items, num_categories=categories, mean_events=EVENTS_PER_USER,
                   min_events=1, max_events=5000, start_time=0, seed=index)
    events = sim.events.head(rows)
    # the simulator draws each behaviour independently of everything else: redrawn in Taobao's mix
    counts = np.array(list(BEHAVIORS.values()), dtype=np.float64)
    behavior = np.random.default_rng([index, 2]).choice(len(BEHAVIORS), size=events.height, p=counts / counts.sum())
    # squeeze the simulated clock into the file's 9 days (order kept); ids offset per chunk
    ts = events["timestamp"].to_numpy().astype(np.float64)
    ts = FIRST + (ts - ts.min()) / max(ts.max() - ts.min(), 1) * (LAST - FIRST - 1)
    return events.select(
        pl.col("user_id") + index * users, pl.col("item_id") + index * items,
        pl.col("category_id") + index * categories, pl.Series("behavior", list(BEHAVIORS)).gather(behavior),
        pl.Series("timestamp", ts.astype(np.int64)))


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
