"""How the size of a scoring chunk (research/ranking.py, `eval.scores_per_chunk`) and the
evaluation batch size set the time of one full-ranking validation pass of SASRec on Beauty:
the module's own evaluation (ranks, every metric, the category metrics and stay/shift slices)
over batches already built, untrained weights (the work does not depend on them), the
configuration of experiments/bench/recbole_compare.py. Best of `--repeat` passes per setting.

    python experiments/bench/eval_chunks.py <Beauty root> [--device cpu] [--threads 2]
"""
import argparse
import sys
from functools import partial
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from eval_breakdown import CONFIG, best_seconds, validation_pass  # noqa: E402

from research.markdown import table  # noqa: E402
from research.ranking import CHUNK_SCORES  # noqa: E402
from research.train import build_datamodule, build_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 30],
                        help="scores per chunk; 2^30 holds a whole batch's scores at once (no chunking)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for batch_size in args.batch_sizes:
        with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base=None):
            cfg = compose("train", overrides=[*CONFIG, f"data.root={args.root}",
                                              f"datamodule.eval_batch_size={batch_size}"])
        datamodule = build_datamodule(cfg)
        module = build_module(cfg, datamodule.meta).to(args.device).eval()
        batches = [{k: v.to(args.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                   for batch in datamodule.val_dataloader()]
        for chunk in args.chunks:
            module.scores_per_chunk = chunk
            best, results = best_seconds(partial(validation_pass, module, batches), args.device, args.repeat)
            rows.append([batch_size, "whole batch" if chunk >= 1 << 30 else f"{chunk:,}", f"{best:.3f}",
                         f"{float(results['ndcg@10']):.6f}", f"{float(results['category_logloss']):.6f}"])
            print(*rows[-1], flush=True)
    print("\n".join([f"{args.device}, {args.threads} thread(s), best of {args.repeat}; the device's default: "
                     f"{CHUNK_SCORES.get(args.device, CHUNK_SCORES['cuda']):,} scores per chunk", "",
                     *table(["eval batch", "scores per chunk", "s per pass", "ndcg@10", "category logloss"], rows)]))


if __name__ == "__main__":
    main()
