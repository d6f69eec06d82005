"""Full ranking one chunk of items at a time (research/ranking.py) gives exactly what ranking the
whole (users x items) score matrix gives: the same ranks under history masking and exact ties
across chunk boundaries, the same category distribution; a NaN score never helps a model; the
setting reaches the module from the config and names no table cell."""

import json
from unittest import mock

import pytest
import torch
from torch import nn

from research import metrics
from research.config import computation
from research.models import latest_output
from research.models.components.heads import OutputHeads
from research.ranking import rank_all_items
from research.train import build_datamodule, build_module
from tests.conftest import BEAUTY, TINY_SYNTHETIC, requires_beauty, train_in_process

CHUNKS = [2, 3, 7, 64, 1 << 30]  # scores per chunk: 1 item per chunk (rows <= 2) .. the whole matrix at once


def dense(heads, h, targets, history, item_category, num_categories):
    """The reference: the whole (B, N+1) matrix, history set to -inf (never the target), ranks by
    research.metrics, the category distribution by a softmax over all items."""
    scores = heads.item_scores(h, slice(None)).T.contiguous()
    ranked = scores.clone()
    if history is not None:
        target_scores = ranked.gather(1, targets.unsqueeze(1))
        ranked[history[0], history[1]] = float("-inf")
        ranked.scatter_(1, targets.unsqueeze(1), target_scores)
    probs = torch.softmax(scores.double(), dim=1)
    by_category = probs.new_zeros(h.size(0), num_categories + 1).index_add_(1, item_category, probs)
    return metrics.target_ranks(ranked, targets), by_category.log().float()


def tied_heads(num_items: int, dim: int, seed: int) -> OutputHeads:
    torch.manual_seed(seed)
    heads = OutputHeads(nn.Embedding(num_items + 1, dim), dim, num_categories=4)
    return heads.eval()


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_ranking_equals_ranking_the_whole_matrix(chunk, masked):
    num_items, rows = 50, 9
    heads = tied_heads(num_items, 8, seed=chunk)
    with torch.no_grad():
        # quarters in [-1, 1]: every product and sum is exact in float32, so a score is the same
        # whichever kernel computes it (products of different shapes may round a dot product
        # differently by an ulp: MKL's small-matrix path on an AVX-512 Xeon does) and every tie is real
        heads.items.weight.copy_(torch.randint(-4, 5, heads.items.weight.shape) / 4)
        # items 11..13 copy item 10: more ties, which chunk boundaries (every 1, 2 or 7 items) split
        heads.items.weight[11:14] = heads.items.weight[10]
        h = torch.randint(-4, 5, (rows, 8)) / 4
        targets = torch.tensor([10, 12, 1, 50, 25, 10, 33, 13, 2])
        # (row, item) pairs; rows 0 and 4 saw their targets before
        history = torch.tensor([[0, 0, 1, 1, 2, 3, 4, 4, 8, 8], [11, 10, 12, 40, 1, 7, 5, 25, 13, 12]])
        item_category = torch.randint(1, 5, (num_items + 1,))
        item_category[0] = 0
        got = rank_all_items(heads, h, targets, num_items, history=history if masked else None,
                             item_category=item_category, num_categories=4, scores_per_chunk=chunk)
        ranks, log_probs = dense(heads, h, targets, history if masked else None, item_category, 4)
    assert got.ranks.tolist() == ranks.tolist()
    torch.testing.assert_close(got.category_log_probs, log_probs)
    assert bool((got.category_log_probs[:, 0] == float("-inf")).all())


def test_a_target_tied_with_other_items_ranks_after_all_of_them():
    heads = tied_heads(6, 4, seed=0)
    with torch.no_grad():
        heads.items.weight[1:] = heads.items.weight[3]  # every item scores the same
        got = rank_all_items(heads, torch.randn(2, 4), torch.tensor([3, 6]), 6, scores_per_chunk=4)
    assert got.ranks.tolist() == [5, 5]  # last among 6 items, for any chunk holding the target


def test_a_nan_score_never_helps_the_model():
    heads = tied_heads(20, 4, seed=1)
    h = torch.randn(3, 4)
    h[1] = float("nan")  # a diverged output: every score NaN
    with torch.no_grad():
        heads.items.weight[7] = float("nan")  # one item scores NaN for every row
        got = rank_all_items(heads, h, torch.tensor([2, 2, 7]), 20, scores_per_chunk=8)
        plain = rank_all_items(heads, h[[0]], torch.tensor([2]), 20, scores_per_chunk=8)
        scores = heads.item_scores(h[[0]], slice(1, None))[:, 0]  # items 1..20
    assert got.ranks[1] == 20 and got.ranks[2] == 20  # behind all 20 items, as ranking the whole matrix says
    # row 0: every item scoring at least the target's, and item 7 (NaN), less the target itself
    assert got.ranks[0] == int(((scores >= scores[1]) | scores.isnan()).sum()) - 1 == plain.ranks[0]
    whole = heads.item_scores(h, slice(None)).T
    assert metrics.target_ranks(whole, torch.tensor([2, 2, 7])).tolist() == got.ranks.tolist()


def test_masking_history_never_worsens_a_rank_and_sometimes_improves_one(make_cfg):
    cfg = make_cfg(*TINY_SYNTHETIC, "model=sasrec")
    dm = build_datamodule(cfg)
    dm.setup()
    torch.manual_seed(0)
    module = build_module(cfg, dm.meta).eval()
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        h = module.model(batch)[:, -1]
        plain, _ = module._rank(h, batch["target_item"], None, categories=False)
        masked, _ = module._rank(h, batch["target_item"], batch["history"], categories=False)
    assert bool((masked <= plain).all())
    assert bool((masked < plain).any()), "some earlier item should have outranked a target"


@requires_beauty
@pytest.mark.parametrize("mask_history", [False, True])
def test_beauty_validation_gives_the_numbers_of_the_whole_matrix(tmp_path, make_cfg, mask_history):
    """On real data at the device's default chunk: SASRec's ranks and category distribution over
    Beauty's 12,101 items, for the first 1,024 validation targets."""
    cfg = make_cfg("data=amazon_beauty", f"data.root={BEAUTY}", "model=sasrec", f"eval.mask_history={mask_history}",
                   "datamodule.eval_batch_size=512")
    dm = build_datamodule(cfg)
    torch.manual_seed(0)
    module = build_module(cfg, dm.meta).eval()
    heads, item_category = module.model.heads, dm.meta.item_category
    for _, batch in zip(range(2), dm.val_dataloader()):
        with torch.no_grad():
            h = latest_output(module.model, batch).float()
            history = batch["history"] if mask_history else None
            ranks, log_probs = module._rank(h, batch["target_item"], history, categories=True)
            want_ranks, want_log_probs = dense(heads, h, batch["target_item"], history, item_category,
                                               module.num_categories)
        assert ranks.tolist() == want_ranks.tolist()
        torch.testing.assert_close(log_probs, want_log_probs, rtol=1e-4, atol=1e-5)


def test_the_chunk_setting_reaches_evaluation_and_names_no_cell(tmp_path, make_cfg):
    runs, chunks = {}, {}
    for chunk in ("null", "5"):  # 5 scores per chunk: 2 items at a time
        with mock.patch("research.module.rank_all_items", wraps=rank_all_items) as ranking:
            code, err = train_in_process([*TINY_SYNTHETIC, "model=gru", "trainer.max_epochs=1", "logger=csv",
                                          f"eval.scores_per_chunk={chunk}"], tmp_path, run_dir=tmp_path / chunk)
        assert code == 0, err
        chunks[chunk] = {c.kwargs["scores_per_chunk"] for c in ranking.call_args_list}
        runs[chunk] = json.loads((tmp_path / chunk / "metrics.json").read_text())
    assert chunks == {"null": {None}, "5": {5}}  # every validation and test batch
    scores = {k: v for k, v in runs["null"].items() if not k.startswith("time/")}
    assert {k: runs["5"][k] for k in scores} == pytest.approx(scores, rel=1e-5, abs=1e-7)
    assert computation(make_cfg("eval.scores_per_chunk=5")) == computation(make_cfg())
