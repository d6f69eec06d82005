"""Where one full-ranking validation pass of SASRec on Beauty spends its time, outside
Lightning's loop: building the batches, the encoder, item scores and ranks, and the category
metrics and migration slices on top. Best of 3 passes each, untrained weights (the work does
not depend on them), the configuration of experiments/bench/recbole_compare.py.

    python experiments/bench/eval_breakdown.py <Beauty root> cuda|cpu [threads (default 1)]
"""
import sys
import time
from functools import partial
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from research import metrics  # noqa: E402
from research.markdown import table  # noqa: E402
from research.models import latest_output  # noqa: E402
from research.ranking import item_chunks  # noqa: E402
from research.train import build_datamodule, build_module  # noqa: E402

CONFIG = ["data=amazon_beauty", "model=sasrec", "model.use_category=false", "model.use_behavior=false",
          "eval.mask_history=false", "loss=ce", "logger=csv"]


def best_seconds(work, device: str, repeat: int = 3) -> tuple[float, object]:
    """The best of `repeat` timings of `work()`, without gradients, the GPU synchronised, and
    what its last call returned."""
    best, value = float("inf"), None
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            value = work()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, value


def validation_pass(module, batches) -> dict:
    """The module's own evaluation of `batches`, every metric: what one validation pass computes."""
    for batch in batches:
        module._evaluate(batch, "val")
    results = module.eval_metrics["val"].compute()
    module.eval_metrics["val"].reset()
    return results


def main(root: str, device: str, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base=None):
        cfg = compose("train", overrides=[*CONFIG, f"data.root={root}"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.meta).to(device).eval()

    def batches():
        for batch in datamodule.val_dataloader():
            yield {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    cached = list(batches())

    rows = []

    def timed(name: str, work) -> None:
        rows.append([name, f"{best_seconds(work, device)[0]:.3f}"])

    outputs = [latest_output(module.model, batch).float() for batch in cached]

    def encoder():
        for batch in cached:
            latest_output(module.model, batch)

    def products():  # the item scores alone, chunk by chunk as the ranking makes them
        for h in outputs:
            for items in item_chunks(module.item_category.numel() - 1, h.size(0), h.device, module.scores_per_chunk):
                module.model.heads.item_scores(h, items)

    def ranks_only():
        for batch, h in zip(cached, outputs):
            module._rank(h, batch["target_item"], None, categories=False)

    def categories_only():
        for h in outputs:
            module._rank(h, None, None, categories=True)

    def item_ranks():
        for batch in cached:
            h = latest_output(module.model, batch).float()
            ranks, _ = module._rank(h, batch["target_item"], None, categories=False)
            metrics.ranking_values(ranks, module.ks)

    timed("building the batches and moving them to the device", lambda: sum(1 for _ in batches()))
    timed("encoder forward", encoder)
    timed("item scores alone (the products, in chunks), encoder outputs ready", products)
    timed("item scores + ranks, encoder outputs ready", ranks_only)
    timed("item scores + category distribution, encoder outputs ready", categories_only)
    timed("encoder + item scores + ranks (hit/ndcg), in chunks", item_ranks)
    timed("the module's evaluation (+ category metrics, stay/shift slices), batches ready",
          partial(validation_pass, module, cached))
    timed("the same, building the batches too", lambda: validation_pass(module, batches()))
    print("\n".join([f"{len(cached)} validation batches on {device}, {threads} thread(s)", "",
                     *table(["part of the pass", "seconds"], rows)]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:4]))
