"""Where early stopping would have stopped a run, for several patiences, read off the run's
recorded validation curve (`validation_curve.jsonl`, one line per validation check). Train once
with a patience too long to trigger, e.g.

    python -m research.train data=amazon_beauty data.root=<Beauty> model=sasrec loss=bce seed=0 \\
        callbacks.early_stopping.patience=1000 callbacks.early_stopping.patience_steps=null \\
        trainer.max_epochs=600 hydra.run.dir=outputs/patience/bce_s0

then

    python experiments/bench/patience_replay.py outputs/patience/bce_s0 [--patience 10 23 50] \\
        [--steps-per-check 88] [--metric val/ndcg@10] [--out FILE]

Early stopping draws no random numbers, so a run with patience P trains exactly the epochs of
the long run up to the epoch P would stop at (on CPU, where runs repeat bit for bit): the replay
says what P would have kept without training once per P. The rule is Lightning's EarlyStopping
with min_delta 0 (research.callbacks.stopping_point, tested against a real fit): a check that
does not beat the best so far adds one to a count that an improvement resets, and training
stops when the count reaches P. Our `patience_steps` becomes checks as ceil(steps / steps per
check), and the larger of the two patiences holds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from research.callbacks import ValidationCurve, stopping_point


def load_curve(run: Path, metric: str) -> list[tuple[int, float]]:
    path = run / "validation_curve.jsonl"
    if not path.is_file():
        raise SystemExit(f"error: {path}: no validation curve (was the run trained by research.train?)")
    curve = []
    for number, record in enumerate(ValidationCurve.read(path), 1):
        if metric not in record:
            raise SystemExit(f"error: {path}:{number}: no {metric!r} (has {sorted(record)[:5]}...)")
        curve.append((int(record["epoch"]), float(record[metric])))
    if not curve:
        raise SystemExit(f"error: {path}: empty")
    return curve


def report(run: Path, curve: list[tuple[int, float]], patiences: list[int], metric: str,
           steps_per_check: float | None, higher_is_better: bool) -> str:
    info = run / "run_info.json"
    command = json.loads(info.read_text())["command"] if info.is_file() else "(no run_info.json)"
    mode = "max" if higher_is_better else "min"
    _, overall_epoch, overall = stopping_point(curve, len(curve) + 1, mode)
    lines = [f"Run `{run}`: {len(curve)} validation checks (epochs {curve[0][0]}..{curve[-1][0]}), "
             f"best {metric} {overall:.4f} at epoch {overall_epoch}.", "",
             f"Command: `{command}`", "",
             f"| patience (checks) | steps | stops after epoch | best epoch | best {metric} | below the curve's best |",
             "|---|---|---|---|---|---|"]
    for patience in patiences:
        stop, best_epoch, best = stopping_point(curve, patience, mode)
        steps = f"{patience * steps_per_check:,.0f}" if steps_per_check else ""
        stop = stop if stop is not None else f"not within the {len(curve)} checks"
        lines.append(f"| {patience} | {steps} | {stop} | {best_epoch} | {best:.4f} | {abs(overall - best):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--patience", nargs="+", type=int, default=[10, 20, 30, 50, 100])
    parser.add_argument("--steps-per-check", type=float, default=None, help="to show each patience in optimiser steps")
    parser.add_argument("--metric", default="val/ndcg@10")
    parser.add_argument("--lower-is-better", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = "\n".join(report(run, load_curve(run, args.metric), args.patience, args.metric, args.steps_per_check,
                            not args.lower_is_better) for run in args.runs)
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
