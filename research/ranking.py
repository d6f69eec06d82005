"""Full ranking over every item, one chunk of items at a time: each target's rank among all
items (research.metrics defines it) and, where asked, the model's next-category distribution
marginalised from its item distribution. The (items, users) score matrix is never held whole:
a chunk is scored, masked, counted and folded into the category sums while it is still in
cache, so evaluation's memory grows with the chunk, not with the catalogue (millions of items
fit), and on a CPU the pass reads each score from cache instead of from memory five times.

No sort: a rank is a count of the items that score at least the target's score."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# scores per chunk (items x users), when the config leaves it to the device. On a CPU a chunk of
# 2 MiB stays in a core's cache (experiments/bench/eval_chunks.py). A GPU pays per kernel
# launch, about 25 per chunk: the number of chunks in a pass is users x items / chunk, so at
# 2^26 scores (256 MiB, under 1 GiB with its temporaries) a Taobao-sized pass (10^6 users x
# 4 x 10^6 items) takes about 60,000 chunks and Beauty's batch of 512 one. Not yet measured on
# a GPU.
CHUNK_SCORES = {"cpu": 1 << 19, "cuda": 1 << 26}


def item_chunks(num_items: int, num_users: int, device: torch.device, scores_per_chunk: int | None) -> list[slice]:
    """The chunks of item ids 0..N (0: padding) a batch of `num_users` rows is scored in."""
    budget = scores_per_chunk or CHUNK_SCORES.get(device.type, CHUNK_SCORES["cuda"])
    step = max(2, budget // max(num_users, 1))
    return [slice(start, min(start + step, num_items + 1)) for start in range(0, num_items + 1, step)]


@dataclass
class FullRanking:
    ranks: torch.Tensor | None  # (B,) int64: items other than the target scoring >= it (0 = top)
    category_log_probs: torch.Tensor | None  # (B, C+1): log P(next category); column 0 (padding) -inf


def rank_all_items(heads, h: torch.Tensor, targets: torch.Tensor | None, num_items: int, *,
                   history: torch.Tensor | None = None, item_category: torch.Tensor | None = None,
                   num_categories: int = 0, scores_per_chunk: int | None = None) -> FullRanking:
    """h: (B, D) outputs; targets: (B,) item ids, or None for no ranks; num_items: N (ids 1..N);
    history: (2, P) (row, item) pairs to exclude from the ranking (never the target itself);
    item_category: (N+1,) category of each item, to marginalise the item distribution over
    categories (None: no category distribution). `heads.item_scores(h, items)` scores rows of
    `h` against `items` (a slice or ids), item-major (len(items), B), padding -inf."""
    rows = h.size(0)
    chunks = item_chunks(num_items, rows, h.device, scores_per_chunk)
    count = None
    if targets is not None:
        # the target's score from a product of the same shape class as a chunk's (items x D by
        # D x B). Products of different shapes may still round a dot product differently by an
        # ulp (MKL's small-matrix path on an AVX-512 Xeon does), so an item whose vector equals the
        # target's, in another chunk, can fall either side of it; exactly equal scores always count
        target_scores = heads.item_scores(h, targets).diagonal()
        count = torch.zeros(rows, dtype=torch.int32, device=h.device)
    if history is not None:  # sorted by item, so each chunk's pairs are one slice
        history = history[:, history[1].argsort()]
        starts = torch.tensor([c.start for c in chunks] + [num_items + 1], device=h.device)  # and the end
        bounds = torch.searchsorted(history[1], starts).tolist()
    if item_category is not None:
        top = torch.full((rows,), float("-inf"), device=h.device)
        mass = h.new_zeros(num_categories + 1, rows)  # sum of exp(score - top) over each category's items
    for chunk, items in enumerate(chunks):
        start, stop = items.start, items.stop
        scores = heads.item_scores(h, items)  # (n, B)
        if item_category is not None:
            new_top = torch.maximum(top, scores.amax(0))
            # rescale what earlier chunks summed to the new maximum (exp(-inf - -inf): a row whose
            # chunks so far held only the padding item has nothing to rescale)
            mass.mul_((top - new_top).exp_().nan_to_num_(0.0))
            mass.index_add_(0, item_category[start:stop], (scores - new_top).exp_())
            top = new_top
        if count is not None:
            if history is not None:
                lo, hi = bounds[chunk], bounds[chunk + 1]
                scores[history[1, lo:hi] - start, history[0, lo:hi]] = float("-inf")
            # the target never counts itself (a scatter, not a boolean index: no wait for the device)
            row = (targets - start).clamp_(0, stop - start - 1).unsqueeze(0)
            here = ((targets >= start) & (targets < stop)).unsqueeze(0)
            scores.scatter_(0, row, scores.gather(0, row).masked_fill_(here, float("-inf")))
            # counted as "not below the target", so a NaN score beats it: a diverged model earns nothing
            count += stop - start - (scores < target_scores).sum(0, dtype=torch.int32)
    log_probs = None
    if item_category is not None:
        log_probs = (mass.clamp(min=1e-30).log_() - mass.sum(0).log()).T.contiguous()
        log_probs[:, 0] = float("-inf")
    # a NaN target score counted every row, its own and the padding item's too: as the whole
    # matrix's count does (research.metrics.target_ranks), it ranks behind all N items
    return FullRanking(None if count is None else count.clamp_(max=num_items).long(), log_probs)
