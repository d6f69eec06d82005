"""Mean ± std over seeds of finished runs, one row per model: a markdown and a CSV table.

    python experiments/seed_table.py RUN_DIR --metrics test/auc test/gauc --out results/NAME [--note TEXT]

Every metrics.json under RUN_DIR counts as one seed of the model named in its config.yaml.
The std is the sample standard deviation (n - 1) over seeds.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from research.report import collect


def summarise(rows: list[dict], metrics: list[str]) -> list[dict]:
    by_model: dict[str, list[dict]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    table = []
    for model, runs in by_model.items():
        out = {"model": model, "seeds": len(runs)}
        for m in metrics:
            values = [r[m] for r in runs]
            out[m] = statistics.fmean(values)
            out[f"{m} std"] = statistics.stdev(values) if len(values) > 1 else float("nan")
        table.append(out)
    return sorted(table, key=lambda r: r[metrics[0]])


def markdown(table: list[dict], metrics: list[str]) -> str:
    lines = ["| model | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for r in table:
        cells = [f"{r[m]:.4f} ± {r[f'{m} std']:.4f}" for m in metrics]
        lines.append(f"| {r['model']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metrics", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix: writes .md and .csv")
    parser.add_argument("--note", default="", help="markdown appended below the table")
    args = parser.parse_args()
    rows = collect([args.run_dir])
    if not rows:
        raise SystemExit(f"no metrics.json under {args.run_dir}")
    table = summarise(rows, args.metrics)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(markdown(table, args.metrics) + "\n" + (f"\n{args.note}\n" if args.note else ""))
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
