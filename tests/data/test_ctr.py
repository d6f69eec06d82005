"""DIEN-protocol examples: what a click prediction may see, and what its negatives are."""

import torch

from research.data.ctr import CTRExamples, NegativeSampler, training_targets
from research.data.splits import LeaveOneOut
from tests.data.test_sequences import make_store


def setup(lengths, distribution="uniform", **kwargs):
    store = make_store(lengths)  # item ids 1..E are unique per event, so an id names its position
    num_items = int(store.items.max()) + 20  # 20 items nobody interacted with
    item_category = torch.arange(num_items + 1) % 3 + 1
    item_category[0] = 0
    counts = torch.ones(num_items + 1, dtype=torch.long)
    sampler = NegativeSampler(store, num_items, distribution, counts)
    return store, sampler, item_category


def test_history_is_the_events_before_the_target_and_the_pair_shares_it():
    lengths = [3, 7, 12]
    store, sampler, item_category = setup(lengths)
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    data = CTRExamples(store, split.test, max_len=5, sampler=sampler, item_category=item_category, eval_seed=0)
    batch = data.__getitems__([0, 1, 2])
    assert batch["label"].tolist() == [1, 1, 1, 0, 0, 0]
    assert torch.equal(batch["items"][:3], batch["items"][3:]) and torch.equal(batch["user"][:3], batch["user"][3:])
    for row in range(3):
        target = int(batch["target_item"][row])
        seen = batch["items"][row][batch["items"][row] > 0].tolist()
        first = target - lengths[int(batch["user"][row])] + 1
        assert seen == list(range(max(first, target - 5), target))  # the last 5 events before it, nothing later
    assert torch.equal(batch["target_category"], item_category[batch["target_item"]])


def test_negatives_are_items_the_user_never_touched():
    lengths = [30, 30, 30]
    store, sampler, _ = setup(lengths)
    users = torch.arange(3).repeat(2000)
    negatives = sampler(users, torch.Generator().manual_seed(0))
    own = [set(store.items[store.offsets[u]:store.offsets[u + 1]].tolist()) for u in range(3)]
    assert all(int(n) not in own[int(u)] for u, n in zip(users, negatives))
    assert negatives.min() >= 1 and negatives.max() <= store.items.max() + 20
    # other users' items are fair negatives: the draw covers them, not only the untouched ones
    assert set(negatives.tolist()) & own[1] and set(negatives.tolist()) & own[2]


def test_popularity_negatives_follow_the_training_counts():
    store, _, _ = setup([5, 5])
    num_items = int(store.items.max()) + 20
    counts = torch.zeros(num_items + 1, dtype=torch.long)
    counts[-1] = 10_000  # one very popular untouched item
    sampler = NegativeSampler(store, num_items, "popularity", counts)
    negatives = sampler(torch.zeros(5000, dtype=torch.long), torch.Generator().manual_seed(0))
    assert (negatives == num_items).float().mean() > 0.9


def test_evaluation_negatives_are_fixed_and_training_negatives_are_redrawn():
    lengths = [20] * 10
    store, sampler, item_category = setup(lengths)
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    rows = list(range(10))
    val = [CTRExamples(store, split.val, 8, sampler, item_category, eval_seed=0).__getitems__(rows) for _ in range(2)]
    assert torch.equal(val[0]["target_item"], val[1]["target_item"])
    train = CTRExamples(store, training_targets(store, split.train_end), 8, sampler, item_category)
    torch.manual_seed(0)
    first, second = train.__getitems__(rows)["target_item"], train.__getitems__(rows)["target_item"]
    assert torch.equal(first[:10], second[:10]) and not torch.equal(first[10:], second[10:])


def test_training_targets_are_every_training_position_once():
    lengths = [3, 5, 9]
    store, _, _ = setup(lengths)
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    targets = training_targets(store, split.train_end)
    expected = [(u, p) for u, n in enumerate(lengths) for p in range(1, n - 2)]
    assert sorted(map(tuple, targets.tolist())) == expected  # no validation/test position, no position 0
