"""Print a markdown table of finished runs (every metrics.json under the given directories).

    python -m research.report outputs/multirun/<sweep> [--metrics test/category_acc@1 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

DEFAULT_METRICS = (
    "test/category_acc@1", "test/category_acc@3", "test/category_macro_f1", "test/stay/category_acc@1",
    "test/shift/category_acc@1", "test/hit@10", "test/ndcg@10", "test/auc", "test/gauc",
)


def collect(directories: list[Path]) -> list[dict]:
    rows = []
    for directory in directories:
        for metrics_file in sorted(directory.rglob("metrics.json")):
            config = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())
            info = metrics_file.parent / "run_info.json"
            device = json.loads(info.read_text()).get("device", "?") if info.exists() else "?"
            rows.append({
                "device": device,
                "model": config["model"]["_target_"].rsplit(".", 1)[-1],
                "task": config["task"]["name"],
                "data": config["data"]["name"],
                "mask_history": config["eval"]["mask_history"],
                **json.loads(metrics_file.read_text()),
            })
    return rows


def markdown(rows: list[dict], metrics: tuple[str, ...]) -> str:
    metrics = tuple(m for m in metrics if any(m in r for r in rows))
    header = ["model", "task", "data", *metrics, "s/epoch", "device"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["model"], r["task"], r["data"], *(f"{r[m]:.4f}" if m in r else "" for m in metrics)]
        cells.append(f"{r['time/train_epoch_seconds']:.1f}" if "time/train_epoch_seconds" in r else "-")
        cells.append(r["device"])
        lines.append("| " + " | ".join(cells) + " |")
    notes = ["leave-one-out by time", "`stay`/`shift`: target category in / not in the user's last 5 events"]
    if any(m.split("/")[-1].split("@")[0] in ("hit", "ndcg", "mrr") for m in metrics):
        protocols = ", ".join(map(str, sorted({r["mask_history"] for r in rows})))
        notes.insert(0, f"full ranking over all items, history masking: {protocols}")
    lines += ["", "Protocol: " + "; ".join(notes) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--metrics", nargs="*", default=list(DEFAULT_METRICS))
    args = parser.parse_args()
    rows = collect(args.directories)
    if not rows:
        raise SystemExit(f"no metrics.json under {', '.join(map(str, args.directories))}")
    print(markdown(rows, tuple(args.metrics)))


if __name__ == "__main__":
    main()
