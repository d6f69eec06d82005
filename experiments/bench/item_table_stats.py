"""How much of a trained model's item tables is one vector common to every item: for each run,
the norm of the mean item vector against the mean norm of each item's deviation from it, for
the input table and (when untied, `model.tie_item_table=false`) the output table.

    python experiments/bench/item_table_stats.py RUN_DIR [RUN_DIR ...] [--checkpoint last|best]

A large common part in the input table means the encoder sees nearly the same vector whichever
item an event holds. It is what a pointwise loss with many uniform negatives (gBCE, 256) does
to a tied table: every sampled item is pushed away from the outputs, the same way for all
(research/models/components/heads.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

TABLES = {"input": "model.embedding.items.weight", "output": "model.heads.items.weight"}


def common_part(table: torch.Tensor) -> tuple[float, float]:
    """(N+1, D) table, row 0 padding -> (norm of the mean item vector, mean norm of the deviations)."""
    items = table[1:].double()
    mean = items.mean(0)
    return float(mean.norm()), float((items - mean).norm(dim=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--checkpoint", default="last", choices=("last", "best"))
    args = parser.parse_args()
    print("| run | epochs | table | mean-vector norm | mean deviation norm | ratio |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        path = run / "checkpoints" / f"{args.checkpoint}.ckpt"
        if not path.is_file():
            raise SystemExit(f"error: {path}: no checkpoint")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state = checkpoint["state_dict"]
        if TABLES["input"] not in state:
            raise SystemExit(f"error: {path}: no {TABLES['input']} (not one of our sequence models)")
        tied = TABLES["output"] not in state or torch.equal(state[TABLES["output"]], state[TABLES["input"]])
        for name, key in TABLES.items():
            if name == "output" and tied:
                continue
            mean, deviation = common_part(state[key])
            label = f"{name}{' (tied: also the output)' if tied else ''}"
            print(f"| `{run}` | {checkpoint['epoch'] + 1} | {label} | {mean:.3f} | {deviation:.3f} | "
                  f"{mean / deviation:.2f} |")


if __name__ == "__main__":
    main()
