"""Our BSARec's validation curve on Amazon Beauty against the authors' published run, epoch by
epoch: their log src/output/BSARec_Beauty_best.log (github.com/yehjin-shin/BSARec, commit
34036fd; c=5, alpha=0.7, 1 head, lr 5e-4, batch 256, dropout 0.5, item ids only, history
masked), validation NDCG@10 and NDCG@20 per epoch, quoted below. Ours: a run of

    python -m research.train data=amazon_beauty data.root=<Beauty> model=bsarec task=next_item \\
        task.train_rows=prefixes datamodule.bucket_by_length=false model.use_category=false \\
        model.use_behavior=false model.c=5 model.alpha=0.7 model.num_heads=1 optimizer.lr=5.0e-4 seed=0

(the "BSARec, the authors' Beauty settings" row of experiments/bsarec_beauty.yaml), then

    python experiments/bench/bsarec_curve.py RUN_DIR [--out FILE] [--note TEXT]

prints the two curves side by side (markdown) and, where the run has a metrics.json, its test
figures beside the authors' (0.1008 / 0.0611 hit@10 / ndcg@10 at their best epoch, 54, chosen
on validation NDCG@20; ours are chosen on validation NDCG@10).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from research.callbacks import ValidationCurve

# validation (NDCG@10, NDCG@20) per epoch 0..64, from the authors' log
AUTHORS = [
    (0.0104, 0.0141), (0.0160, 0.0210), (0.0266, 0.0329), (0.0330, 0.0406), (0.0410, 0.0492),
    (0.0470, 0.0565), (0.0531, 0.0623), (0.0583, 0.0677), (0.0621, 0.0719), (0.0648, 0.0742),
    (0.0657, 0.0758), (0.0671, 0.0768), (0.0679, 0.0779), (0.0690, 0.0788), (0.0692, 0.0794),
    (0.0699, 0.0804), (0.0705, 0.0807), (0.0703, 0.0805), (0.0708, 0.0809), (0.0709, 0.0816),
    (0.0697, 0.0805), (0.0707, 0.0811), (0.0727, 0.0824), (0.0716, 0.0819), (0.0711, 0.0814),
    (0.0713, 0.0820), (0.0722, 0.0827), (0.0720, 0.0830), (0.0721, 0.0823), (0.0716, 0.0819),
    (0.0723, 0.0829), (0.0729, 0.0830), (0.0722, 0.0826), (0.0728, 0.0833), (0.0731, 0.0834),
    (0.0723, 0.0822), (0.0722, 0.0827), (0.0722, 0.0827), (0.0734, 0.0837), (0.0731, 0.0836),
    (0.0722, 0.0828), (0.0728, 0.0830), (0.0720, 0.0823), (0.0719, 0.0825), (0.0729, 0.0834),
    (0.0724, 0.0828), (0.0722, 0.0825), (0.0730, 0.0831), (0.0740, 0.0843), (0.0725, 0.0829),
    (0.0733, 0.0835), (0.0736, 0.0834), (0.0741, 0.0842), (0.0735, 0.0837), (0.0753, 0.0852),
    (0.0731, 0.0835), (0.0732, 0.0836), (0.0740, 0.0849), (0.0739, 0.0842), (0.0727, 0.0832),
    (0.0731, 0.0836), (0.0729, 0.0835), (0.0739, 0.0843), (0.0737, 0.0840), (0.0728, 0.0833),
]
AUTHORS_TEST = {"hit@10": 0.1008, "ndcg@10": 0.0611, "hit@20": 0.1373, "ndcg@20": 0.0703}


def fmt(value: float | None) -> str:  # None: past the authors' last epoch
    return "" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", default="", help="how the run was made and ended (machine, what ran beside it)")
    args = parser.parse_args()
    ours = ValidationCurve.read(args.run_dir / "validation_curve.jsonl")
    info = args.run_dir / "run_info.json"
    command = json.loads(info.read_text())["command"] if info.is_file() else ""
    lines = ["| epoch | authors: val ndcg@10 | ours | authors: val ndcg@20 | ours |", "|---|---|---|---|---|"]
    for row in ours:
        e = row["epoch"]
        theirs = AUTHORS[e] if e < len(AUTHORS) else (None, None)
        lines.append(f"| {e} | {fmt(theirs[0])} | {row['val/ndcg@10']:.4f} | {fmt(theirs[1])} "
                     f"| {row['val/ndcg@20']:.4f} |")
    best = max(ours, key=lambda r: r["val/ndcg@10"])
    summary = [f"Ours: {len(ours)} epochs, best validation ndcg@10 {best['val/ndcg@10']:.4f} at epoch {best['epoch']}. "
               f"Authors: 65 epochs, best validation ndcg@10 {max(a for a, _ in AUTHORS):.4f}."]
    metrics = args.run_dir / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        summary.append("Test of the best checkpoint, ours against the authors': " + ", ".join(
            f"{k} {m[f'test/{k}']:.4f} / {v:.4f}" for k, v in AUTHORS_TEST.items()) + ".")
    header = f"Run: `{args.run_dir}`" + (f" (`{command}`)" if command else "")
    report = "\n".join([header, "", *([args.note, ""] if args.note else []), *summary, "", *lines, ""])
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
