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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from taobao_log import FIRST, LAST, log_path, write_log

MIN_EVENTS = 3


def polars_pipeline(source: Path, out: Path) -> dict:
    from research.data import cache
    from research.data.builders.table import TableBuilder

    builder = TableBuilder(str(source), {"user_id": 0, "item_id": 1, "category_id": 2, "behavior": 3, "timestamp": 4},
                           name="bench", has_header=False, behaviors=["pv", "buy", "cart", "fav"],
                           time_range=[FIRST, LAST])
    out.mkdir(parents=True, exist_ok=True)
    cache.build(builder, {"bench": str(source)}, MIN_EVENTS, out)  # the fingerprint (a file hash) is cache bookkeeping
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


def child(kind: str, source: Path, out: Path, rows_per_bucket: int | None) -> None:
    if kind == "polars":  # imports before the clock starts
        from research.data import pipeline

        pipeline.ROWS_PER_BUCKET = rows_per_bucket or pipeline.ROWS_PER_BUCKET
    else:
        import pandas  # noqa: F401
    t0 = time.perf_counter()
    report = (polars_pipeline if kind == "polars" else pandas_pipeline)(source, out)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_gib": peak_kib / 2**20, "events": report["events"]}))


def measure(kind: str, source: Path, out: Path, rows_per_bucket: int | None) -> dict:
    extra = ["--rows-per-bucket", str(rows_per_bucket)] if rows_per_bucket else []
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--source", str(source), "--out", str(out),
                           *extra],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} pipeline failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_events(polars_out: Path, pandas_out: Path) -> bool:
    """Both sides produced the same dense events, row for row (the benchmark compares equal work)."""
    import polars as pl

    columns = ["user", "item", "category", "timestamp", "order", "behavior"]
    ours = pl.scan_parquet(polars_out / "events.parquet").select(pl.col(columns).cast(pl.Int64))
    theirs = pl.scan_parquet(pandas_out / "events.parquet").select(pl.col(columns).cast(pl.Int64))
    return ours.collect().equals(theirs.collect())


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.machine())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPU cores ({model}), {memory:.0f} GiB RAM, polars threads: " \
           f"{os.environ.get('POLARS_MAX_THREADS', 'all')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--pipelines", nargs="+", choices=["polars", "pandas"], default=["polars", "pandas"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per pipeline, interleaved; the median is reported")
    parser.add_argument("--child", choices=["polars", "pandas"])
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rows-per-bucket", type=int, help="the polars pipeline's memory knob (default: its own)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source, args.out, args.rows_per_bucket)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = log_path(args.workdir, args.rows)
    if not source.exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        write_log(source, args.rows)
    outputs = {kind: args.workdir / f"out_{kind}_{args.rows}" for kind in args.pipelines}
    runs = {kind: [] for kind in outputs}
    for _ in range(args.repeat):  # interleaved, so a slow spell of the machine hits both sides
        for kind, out in outputs.items():
            runs[kind].append(measure(kind, source, out, args.rows_per_bucket))
    results = {kind: {"seconds": statistics.median(r["seconds"] for r in rs), "all": [r["seconds"] for r in rs],
                      "peak_gib": max(r["peak_gib"] for r in rs), "events": rs[0]["events"]}
               for kind, rs in runs.items()}
    from research.markdown import table

    print("\n".join(table(
        ["pipeline", "rows", "events kept", f"wall s (median of {args.repeat})", "each run, s", "peak RSS GiB (max)"],
        ([kind, f"{args.rows:,}", f"{r['events']:,}", f"{r['seconds']:.1f}", ", ".join(f"{x:.1f}" for x in r["all"]),
          f"{r['peak_gib']:.2f}"] for kind, r in results.items()))))
    if len(results) == 2:
        if not same_events(outputs["polars"], outputs["pandas"]):
            raise SystemExit("the two pipelines produced different events: the comparison is void")
        p, q = results["polars"], results["pandas"]
        print(f"\nBoth produced identical events. polars is {q['seconds'] / p['seconds']:.1f}x faster; peak memory "
              f"pandas / polars: {q['peak_gib'] / p['peak_gib']:.2f}.")
    print(f"Machine: {machine()}. Source file: {source.stat().st_size / 2**30:.2f} GiB of CSV.")
    from research.data import pipeline

    print(f"polars pipeline: {args.rows_per_bucket or pipeline.ROWS_PER_BUCKET:,} rows per user range.")
    extra = f" --rows-per-bucket {args.rows_per_bucket}" if args.rows_per_bucket else ""
    extra += f" --repeat {args.repeat}" if args.repeat > 1 else ""
    pipelines = " ".join(args.pipelines)
    print(f"Command: `python experiments/bench/preprocess.py --rows {args.rows} --pipelines {pipelines}{extra}`")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
