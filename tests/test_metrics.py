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


def test_grouped_auc_matches_torchmetrics_and_averages_ties():
    from torchmetrics.functional.classification import binary_auroc

    torch.manual_seed(0)
    scores = torch.randint(0, 6, (600,)).float()  # many ties
    labels = torch.randint(0, 2, (600,))
    groups = torch.randint(0, 5, (600,))
    auc, size = metrics.grouped_auc(scores, labels, groups)
    for g in range(5):
        rows = groups == g
        assert float(auc[g]) == pytest.approx(float(binary_auroc(scores[rows], labels[rows])), abs=1e-6)
        assert size[g] == rows.sum()
    # one positive tied with one of two negatives: (1 + 0.5) / 2
    tied, _ = metrics.grouped_auc(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1, 0, 0]),
                                  torch.zeros(3, dtype=torch.long))
    assert float(tied[0]) == pytest.approx(0.75)


def test_gauc_weights_users_by_examples_and_skips_one_class_users():
    logits = torch.tensor([2.0, 1.0, 0.0, 0.5, 1.0, 3.0, 0.1])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    users = torch.tensor([7, 7, 7, 9, 9, 4, 4])  # user 4 has positives only: no AUC
    out = metrics.ctr_values(logits, labels, users)
    # user 7: positive above both negatives (AUC 1, 3 examples); user 9: below (AUC 0, 2 examples)
    assert out["gauc"] == pytest.approx((1.0 * 3 + 0.0 * 2) / 5)
    assert out["count"] == 7
    expected_logloss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).item()
    assert out["logloss"] == pytest.approx(expected_logloss, rel=1e-6)
