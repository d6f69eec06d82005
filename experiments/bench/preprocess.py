"""Preprocessing benchmark: a Taobao-format log (made by the simulator) to split-ready
sequences, by our polars pipeline and by a straightforward pandas implementation of the same
steps, each in its own process (wall time and peak resident memory), in one run.

    python experiments/bench/preprocess.py --rows 10000000 [--workdir outputs/bench]

Steps, both sides: read the CSV with typed columns, drop rows outside the time range (counted),
drop rows with a missing field and exact duplicates, drop users with fewer than 3 events,
give each item its most frequent category, map users/items/categories/behaviours to dense ids,
sort by user, time and source order, write the events and the id maps as parquet.
Prints a markdown table (and the machine) for results/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

FIRST, LAST = 1_511_539_200, 1_512_316_800  # the Taobao file's range, 2017-11-24T16:00Z .. 2017-12-03T16:00Z
MIN_EVENTS = 3


def make_log(path: Path, rows: int) -> None:
    import numpy as np
    import polars as pl

    from research.data.simulator import simulate

    sim = simulate(num_users=max(rows // 60, 10), num_items=max(rows // 100, 1000), num_categories=50,
                   mean_events=60, min_events=1, max_events=2000, start_time=FIRST - 86_400, seed=0)
    events = sim.events.head(rows)
    # squeeze the simulated clock into the file's 9 days (order kept), then make every 1000th
    # row a stray 40 days early, as the public file has some
    ts = events["timestamp"].to_numpy().astype(np.float64)
    ts = FIRST + (ts - ts.min()) / max(ts.max() - ts.min(), 1) * (LAST - FIRST - 1)
    stray = np.zeros(events.height, dtype=np.int64)
    stray[::1000] = -40 * 86_400
    events.select("user_id", "item_id", "category_id", "behavior").with_columns(
        pl.Series("timestamp", ts.astype(np.int64) + stray)).write_csv(path, include_header=False)


def polars_pipeline(source: Path, out: Path) -> dict:
    from research.data import cache
    from research.data.builders.table import TableBuilder

    builder = TableBuilder(str(source), {"user_id": 0, "item_id": 1, "category_id": 2, "behavior": 3, "timestamp": 4},
                           name="bench", has_header=False, behaviors=["pv", "buy", "cart", "fav"],
                           time_range=[FIRST, LAST])
    out.mkdir(parents=True, exist_ok=True)
    cache.build(builder, builder.fingerprint(), MIN_EVENTS, out)
    return json.loads((out / "meta.json").read_text())["report"]


def pandas_pipeline(source: Path, out: Path) -> dict:
    import pandas as pd

    frame = pd.read_csv(source, header=None, names=["user_id", "item_id", "category_id", "behavior", "timestamp"],
                        dtype={"user_id": "int64", "item_id": "int64", "category_id": "int64", "behavior": "object",
                               "timestamp": "int64"})
    report = {"raw_events": len(frame)}
    frame["order"] = range(len(frame))
    frame = frame[(frame["timestamp"] >= FIRST) & (frame["timestamp"] < LAST)]
    frame = frame.dropna()
    frame = frame.drop_duplicates(subset=["user_id", "item_id", "category_id", "behavior", "timestamp"], keep="first")
    counts = frame.groupby("user_id")["item_id"].transform("size")
    frame = frame[counts >= MIN_EVENTS]
    pairs = frame.groupby(["item_id", "category_id"]).size().reset_index(name="n")
    pairs = pairs.sort_values(["item_id", "n", "category_id"], ascending=[True, False, True])
    item_category = pairs.drop_duplicates("item_id").set_index("item_id")["category_id"]
    maps = {}
    for column, start in (("user_id", 0), ("item_id", 1), ("behavior", 1)):
        raw = pd.Series(sorted(frame[column].unique()))
        maps[column] = pd.Series(range(start, start + len(raw)), index=raw)
    categories = pd.Series(sorted(item_category.unique()))
    maps["category_id"] = pd.Series(range(1, len(categories) + 1), index=categories)
    events = pd.DataFrame({
        "user": frame["user_id"].map(maps["user_id"]).to_numpy(),
        "item": frame["item_id"].map(maps["item_id"]).to_numpy(),
        "category": frame["item_id"].map(item_category).map(maps["category_id"]).to_numpy(),
        "timestamp": frame["timestamp"].to_numpy(), "order": frame["order"].to_numpy(),
        "behavior": frame["behavior"].map(maps["behavior"]).to_numpy()})
    events = events.sort_values(["user", "timestamp", "order"], kind="stable")
    out.mkdir(parents=True, exist_ok=True)
    events.to_parquet(out / "events.parquet", index=False)
    for name, mapping in maps.items():
        mapping.rename("dense").rename_axis("raw").reset_index().to_parquet(out / f"{name}.parquet", index=False)
    report["events"] = len(events)
    return report


def child(kind: str, source: Path, out: Path) -> None:
    if kind == "polars":  # imports before the clock starts (torch comes with the package)
        import research.data.cache  # noqa: F401
    else:
        import pandas  # noqa: F401
    t0 = time.perf_counter()
    report = (polars_pipeline if kind == "polars" else pandas_pipeline)(source, out)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_gib": peak_kib / 2**20, "events": report["events"]}))


def measure(kind: str, source: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--source", str(source), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} pipeline failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--child", choices=["polars", "pandas"])
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source, args.out)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / f"taobao_{args.rows}.csv"
    if not source.exists():
        make_log(source, args.rows)
    results = {kind: measure(kind, source, args.workdir / f"out_{kind}") for kind in ("polars", "pandas")}
    assert results["polars"]["events"] == results["pandas"]["events"], results  # the same work on both sides
    p, q = results["polars"], results["pandas"]
    print(f"| pipeline | rows | events kept | wall s | peak GiB |\n|---|---|---|---|---|")
    for kind, r in results.items():
        print(f"| {kind} | {args.rows:,} | {r['events']:,} | {r['seconds']:.1f} | {r['peak_gib']:.2f} |")
    print(f"\npolars is {q['seconds'] / p['seconds']:.1f}x faster and uses {q['peak_gib'] / p['peak_gib']:.1f}x less "
          f"peak memory. Machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
          f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'all')}.")
    print(f"Command: `python experiments/bench/preprocess.py --rows {args.rows}`")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
