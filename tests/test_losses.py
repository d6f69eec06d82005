"""Item losses: each equals its formula on fixed negatives, sampled variants drop accidental
hits, and every loss in conf/loss trains a model (its loss falls)."""

import csv

import pytest
import torch
from hydra.utils import instantiate
from torch.nn import functional as F

from research import losses
from research.data.schema import DatasetMeta
from research.train import run
from tests.conftest import TINY_SYNTHETIC, options

N, D = 30, 8


class Heads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.item_table = torch.randn(N + 1, D)

    def query(self, h: torch.Tensor) -> torch.Tensor:
        return h


@pytest.fixture
def meta() -> DatasetMeta:
    counts = torch.arange(N + 1)
    counts[0] = 0
    return DatasetMeta(name="toy", num_items=N, num_categories=2, num_behaviors=0,
                       item_category=torch.ones(N + 1, dtype=torch.long), train_item_counts=counts,
                       train_category_counts=torch.ones(3, dtype=torch.long), category_names=("a", "b"))


def fixed_negatives(monkeypatch, negatives: torch.Tensor) -> None:
    monkeypatch.setattr(torch, "randint", lambda low, high, size, device=None: negatives)


def test_full_softmax_is_cross_entropy_over_all_items(meta):
    torch.manual_seed(0)
    heads, query, targets = Heads(), torch.randn(5, D), torch.randint(1, N + 1, (5,))
    expected = F.cross_entropy(query @ heads.item_table.T + torch.tensor([-1e9] + [0.0] * N), targets)
    torch.testing.assert_close(losses.FullSoftmaxCE(meta)(query, targets, heads).mean(), expected)


def test_bce_bpr_and_gbce_match_their_formulas_and_drop_accidental_hits(meta, monkeypatch):
    torch.manual_seed(0)
    heads, query = Heads(), torch.randn(3, D)
    targets = torch.tensor([4, 9, 2])
    negatives = torch.tensor([[5, 4], [1, 2], [3, 2]])  # row 0's second negative is its target
    fixed_negatives(monkeypatch, negatives)
    pos = (query * heads.item_table[targets]).sum(1)
    neg = torch.einsum("md,mkd->mk", query, heads.item_table[negatives])
    valid = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    valid[2, 1] = 0.0 if targets[2] == negatives[2, 1] else 1.0

    bce = (-F.logsigmoid(pos) - (F.logsigmoid(-neg) * valid).sum(1)).mean()
    torch.testing.assert_close(losses.SampledBCE(meta, num_negatives=2)(query, targets, heads).mean(), bce)
    bpr = ((-F.logsigmoid(pos.unsqueeze(1) - neg) * valid).sum(1) / valid.sum(1)).mean()
    torch.testing.assert_close(losses.BPR(meta, num_negatives=2)(query, targets, heads).mean(), bpr)
    torch.testing.assert_close(losses.GBCE(meta, num_negatives=2, t=0.0)(query, targets, heads).mean(), bce)
    alpha = 2 / (N - 1)  # the sampling rate
    assert losses.GBCE(meta, num_negatives=2, t=1.0).beta == pytest.approx(alpha)  # fully calibrated
    half = losses.GBCE(meta, num_negatives=2, t=0.5)
    assert half.beta == pytest.approx(alpha * (0.5 * (1 - 1 / alpha) + 1 / alpha))
    expected = (half.beta * -F.logsigmoid(pos) - (F.logsigmoid(-neg) * valid).sum(1)).mean()
    torch.testing.assert_close(half(query, targets, heads).mean(), expected)


@pytest.mark.parametrize("shared", [True, False])
def test_sampled_softmax_with_log_q_estimates_the_full_softmax(meta, shared):
    torch.manual_seed(0)
    heads, query, targets = Heads(), torch.randn(64, D), torch.randint(1, N + 1, (64,))
    full = losses.FullSoftmaxCE(meta)(query, targets, heads).mean()
    corrected = losses.SampledSoftmaxCE(meta, num_negatives=2000, distribution="popularity", shared_negatives=shared)
    plain = losses.SampledSoftmaxCE(meta, num_negatives=2000, distribution="popularity", log_q_correction=False,
                                    shared_negatives=shared)
    estimate = torch.stack([corrected(query, targets, heads).mean() for _ in range(20)]).mean()
    biased = torch.stack([plain(query, targets, heads).mean() for _ in range(20)]).mean()
    # with many samples the corrected loss is close to the full one; without correction popular items dominate
    assert abs(float(estimate - full)) < 0.1 * float(full)
    assert abs(float(biased - full)) > abs(float(estimate - full))


def test_sampled_softmax_never_counts_the_target_as_its_own_negative(meta, monkeypatch):
    heads, query = Heads(), torch.randn(2, D)
    targets = torch.tensor([3, 7])
    monkeypatch.setattr(torch, "multinomial", lambda q, k, replacement: torch.tensor([3, 3, 5]))
    loss = losses.SampledSoftmaxCE(meta, num_negatives=3, distribution="uniform", log_q_correction=False)
    s = heads.item_table
    row0 = -F.log_softmax(torch.stack([query[0] @ s[3], query[0] @ s[5]]), 0)[0]  # both 3s dropped
    row1 = -F.log_softmax(torch.stack([query[1] @ s[7], query[1] @ s[3], query[1] @ s[3], query[1] @ s[5]]), 0)[0]
    torch.testing.assert_close(loss(query, targets, heads), torch.stack([row0, row1]))
    assert bool(torch.isfinite(loss(query, targets, heads)).all())


def test_per_position_negatives_differ_between_rows_and_drop_accidental_hits(meta, monkeypatch):
    heads, query = Heads(), torch.randn(2, D)
    targets = torch.tensor([3, 7])
    drawn = torch.tensor([3, 5, 7, 7])  # row 0: (3, 5), row 1: (7, 7)
    monkeypatch.setattr(torch, "multinomial", lambda q, k, replacement: drawn[:k])
    loss = losses.SampledSoftmaxCE(meta, num_negatives=2, distribution="uniform", log_q_correction=False,
                                   shared_negatives=False)
    s = heads.item_table
    row0 = -F.log_softmax(torch.stack([query[0] @ s[3], query[0] @ s[5]]), 0)[0]  # its 3 is a hit
    row1 = torch.tensor(0.0)  # both negatives are the target: only the target is left
    torch.testing.assert_close(loss(query, targets, heads), torch.stack([row0, row1]))


def test_loss_weightings():
    values = torch.tensor([1.0, 1.0, 1.0, 4.0])  # rows 0, 0, 0 and 1 of a batch of 2 rows
    mask = torch.tensor([[True, True, True], [False, False, True]])
    # every target the same weight, divided by the epoch's mean targets per batch
    assert float(losses.weigh(values, mask, "target", targets_per_batch=2.0)) == pytest.approx(7 / 2)
    # every row the same weight: (mean of row 0 + mean of row 1) / 2
    assert float(losses.weigh(values, mask, "window", targets_per_batch=2.0)) == pytest.approx((1 + 4) / 2)
    assert float(losses.weigh(values, mask, "batch", targets_per_batch=2.0)) == pytest.approx(7 / 4)


def test_unknown_weighting_fails_with_one_line(make_cfg):
    with pytest.raises(ValueError, match=r"^loss.weighting=user: must be one of target, window, batch$"):
        run(make_cfg("model=gru", "loss.weighting=user", "debug=fast", *TINY_SYNTHETIC))


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_is_float32_under_bf16_autocast(loss, meta, make_cfg):
    """Mixed precision (trainer.precision=bf16-mixed runs the step under autocast): the products
    may run in bf16, the loss per target is float32 and near the float32 loss."""
    item_loss = instantiate(make_cfg(f"loss={loss}").loss.item, meta=meta)
    heads, query, targets = Heads(), torch.randn(64, D), torch.randint(1, N + 1, (64,))
    losses_by_precision = []
    for enabled in (False, True):
        torch.manual_seed(0)  # the same negatives in both
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            losses_by_precision.append(item_loss(query, targets, heads))
    full, mixed = losses_by_precision
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, full, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_trains_a_sequence_model(loss, make_cfg, tmp_path):
    run(make_cfg("model=sasrec", f"loss={loss}", "logger=csv", "trainer.max_epochs=3", "datamodule.batch_size=32",
                 "loss.item.num_negatives=16" if loss != "ce" else "loss.category.label_smoothing=0.0",
                 *TINY_SYNTHETIC))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        curve = [float(r["train/item_loss"]) for r in csv.DictReader(f) if r.get("train/item_loss")]
    assert len(curve) == 3 and curve[-1] < curve[0], curve


@pytest.mark.parametrize("loss", [losses.SampledBCE, losses.BPR, losses.GBCE])
def test_under_item_dropout_an_item_drawn_as_a_negative_is_scored_as_the_target(loss, meta, monkeypatch):
    """One dropout mask per step: the target and the negatives see the same dropped table."""
    from research.models.components.heads import OutputHeads

    torch.manual_seed(0)
    heads = OutputHeads(torch.nn.Embedding(N + 1, D, padding_idx=0), D, 2, item_dropout=0.5).train()
    query, targets = torch.randn(4, D), torch.tensor([3, 7, 7, 12])
    fixed_negatives(monkeypatch, targets.unsqueeze(1).expand(4, 3))  # every negative is its row's target
    positive, negative, valid = loss(meta, num_negatives=3).scores(query, targets, heads)
    assert not valid.any()
    torch.testing.assert_close(negative, positive.unsqueeze(1).expand(4, 3))


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_scores_a_learned_item_bias_with_the_target(loss, meta, make_cfg):
    """Heads with `item_bias`: at bias 0 every loss equals the loss of the same heads without
    one (same draws); raising an item's bias lowers the loss of the rows it is the target of;
    the loss trains the bias."""
    from research.models.components.heads import OutputHeads

    item_loss = instantiate(make_cfg(f"loss={loss}").loss.item, meta=meta)
    torch.manual_seed(0)
    items = torch.nn.Embedding(N + 1, D, padding_idx=0)
    plain, biased = OutputHeads(items, D, 2), OutputHeads(items, D, 2, item_bias=True)
    query, targets = torch.randn(16, D), torch.randint(1, N + 1, (16,))
    targets[:4] = 5

    def loss_with(heads):
        torch.manual_seed(1)  # the same negatives for every heads
        return item_loss(query, targets, heads)

    torch.testing.assert_close(loss_with(biased), loss_with(plain))
    loss_with(biased).sum().backward()
    assert biased.item_bias.grad[targets].abs().min() > 0
    with torch.no_grad():
        biased.item_bias[5] += 5.0
    assert bool((loss_with(biased)[:4] < loss_with(plain)[:4]).all())


def test_a_fit_trains_the_item_bias(make_cfg, tmp_path):
    """Through the real driver: `model.item_bias=true` gives BERT4Rec a bias that training moves."""
    run(make_cfg("model=bert4rec", "model.item_bias=true", "logger=csv", "trainer.max_epochs=2",
                 "datamodule.batch_size=32", *TINY_SYNTHETIC))
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    bias = state["model.heads.item_bias"]
    assert bias.shape == state["model.embedding.items.weight"].shape[:1] and bias[1:].abs().min() > 0
