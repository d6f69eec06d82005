import math

import pytest
import torch

from research import metrics


def test_ranks_are_pessimistic_under_ties():
    scores = torch.tensor([[0.0, 3.0, 1.0, 2.0, 2.0], [0.0, 1.0, 1.0, 1.0, 1.0]])
    ranks = metrics.target_ranks(scores, torch.tensor([3, 2]))
    # row 0: item 1 beats the target, item 4 ties it -> rank 2; row 1: all tie -> last (3)
    assert ranks.tolist() == [2, 3]


def test_ranking_values_match_hand_computation():
    values = metrics.ranking_values(torch.tensor([0, 4, 9, 25]), ks=(5, 10))
    assert values["hit@5"].tolist() == [1, 1, 0, 0]
    assert values["hit@10"].tolist() == [1, 1, 1, 0]
    expected_ndcg10 = [1.0, 1 / math.log2(6), 1 / math.log2(11), 0.0]
    assert values["ndcg@10"].tolist() == pytest.approx(expected_ndcg10)
    assert values["mrr@5"].tolist() == pytest.approx([1.0, 0.2, 0.0, 0.0])
    assert values["mrr@10"].tolist() == pytest.approx([1.0, 0.2, 0.1, 0.0])


def test_mask_seen_excludes_history_but_never_the_target():
    scores = torch.tensor([[-9.0, 5.0, 4.0, 3.0, 2.0]])
    history = torch.tensor([[0, 0], [1, 3]])  # row 0 saw items 1 and 3
    masked = metrics.mask_seen(scores, history, torch.tensor([3]))  # target 3 was also seen
    assert masked[0, 1] == float("-inf")
    assert masked[0, 3] == 3.0  # target keeps its score
    assert metrics.target_ranks(masked, torch.tensor([3])).item() == 1  # only item 2 beats it
    assert metrics.target_ranks(scores, torch.tensor([3])).item() == 2  # unmasked: items 1, 2


def test_category_values_and_macro_f1():
    log_probs = torch.log(torch.tensor([[0.0, 0.7, 0.2, 0.1], [0.0, 0.1, 0.3, 0.6], [0.0, 0.5, 0.4, 0.1]]))
    targets = torch.tensor([1, 2, 3])
    v = metrics.category_values(log_probs, targets)
    assert v["category_acc@1"].tolist() == [1, 0, 0]
    assert v["category_acc@3"].tolist() == [1, 1, 1]
    assert v["category_logloss"].tolist() == pytest.approx([-math.log(0.7), -math.log(0.3), -math.log(0.1)])
    preds = torch.tensor([1, 3, 1])
    # class 1: P=1/2 R=1 F1=2/3; class 2: 0; class 3: P=0 R=0 -> 0; macro over {1,2,3}
    assert metrics.macro_f1(preds, targets, 4) == pytest.approx((2 / 3) / 3)


def test_sliced_metrics_report_each_slice_with_counts():
    acc = metrics.SlicedMetrics(num_categories=3)
    values = {"hit@10": torch.tensor([1.0, 0.0, 1.0, 1.0])}
    is_shift = torch.tensor([True, True, False, False])
    acc.update(values, is_shift, torch.tensor([1, 2, 3, 3]), torch.tensor([1, 1, 3, 3]))
    out = acc.compute()
    assert out["hit@10"] == pytest.approx(0.75)
    assert out["shift/hit@10"] == pytest.approx(0.5) and out["shift/count"] == 2
    assert out["stay/hit@10"] == pytest.approx(1.0) and out["stay/count"] == 2
    assert out["stay/category_macro_f1"] == pytest.approx(1.0)
