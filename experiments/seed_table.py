"""Mean ± std over seeds of finished runs, one row per cell: a markdown and a CSV table.

    python experiments/seed_table.py RESULTS_DIR --out results/NAME [--metrics ...] [--note-file F]

Every metrics.json under RESULTS_DIR/<label>/seed<k>/ counts as one seed of the cell <label>
(see experiments/seed_cells.sh). The std is the sample standard deviation (n - 1) over seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import yaml

DEFAULT_METRICS = ("test/auc", "test/gauc", "test/logloss", "val/auc", "test/hit@10", "test/ndcg@10",
                   "test/category_acc@1", "time/epochs")


def collect(results_dir: Path) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = {}
    for metrics_file in sorted(results_dir.rglob("seed*/metrics.json")):
        run = metrics_file.parent
        config = yaml.safe_load((run / "config.yaml").read_text())
        label = run.parent.relative_to(results_dir).as_posix()
        row = {"model": config["model"]["_target_"].rsplit(".", 1)[-1], **json.loads(metrics_file.read_text())}
        cells.setdefault(label, []).append(row)
    return cells


def summarise(cells: dict[str, list[dict]], metrics: list[str]) -> list[dict]:
    table = []
    for label, runs in cells.items():
        out = {"cell": label, "model": runs[0]["model"], "seeds": len(runs)}
        for m in metrics:
            values = [r[m] for r in runs]
            out[m] = statistics.fmean(values)
            out[f"{m} std"] = statistics.stdev(values) if len(values) > 1 else float("nan")
        table.append(out)
    return table


def markdown(table: list[dict], metrics: list[str]) -> str:
    lines = ["| cell | model | seeds | " + " | ".join(metrics) + " |", "|---|---|---|" + "---|" * len(metrics)]
    for r in table:
        cells = [f"{r[m]:.4f} ± {r[f'{m} std']:.4f}" for m in metrics]
        lines.append(f"| {r['cell']} | {r['model']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix: writes .md and .csv")
    parser.add_argument("--metrics", nargs="+", help=f"default: those of {DEFAULT_METRICS} every run has")
    parser.add_argument("--note-file", type=Path, help="markdown appended below the table")
    args = parser.parse_args()
    cells = collect(args.results_dir)
    if not cells:
        raise SystemExit(f"no <label>/seed<k>/metrics.json under {args.results_dir}")
    runs = [r for rs in cells.values() for r in rs]
    metrics = args.metrics or [m for m in DEFAULT_METRICS if all(m in r for r in runs)]
    table = summarise(cells, metrics)
    note = args.note_file.read_text() if args.note_file else ""
    args.out.with_suffix(".md").write_text(markdown(table, metrics) + "\n" + (f"\n{note}" if note else ""))
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
