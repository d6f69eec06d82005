import pytest
import torch

from research.data.splits import GlobalTimeSplit, LeaveOneOut, UserHoldout


def offsets_of(lengths: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])


def test_leave_one_out_gives_every_user_one_val_and_one_test_target():
    lengths = torch.tensor([3, 7, 4, 12])
    split = LeaveOneOut()(lengths, torch.arange(int(lengths.sum())), offsets_of(lengths))
    assert torch.equal(split.val[:, 0].sort().values, torch.arange(4))
    assert torch.equal(split.test[:, 0].sort().values, torch.arange(4))
    assert torch.equal(split.val[:, 1], lengths - 2)
    assert torch.equal(split.test[:, 1], lengths - 1)
    # training events end before the validation target: no target is ever a training event
    assert torch.equal(split.train_end, lengths - 2)


def test_leave_one_out_rejects_too_short_users():
    lengths = torch.tensor([2, 5])
    try:
        LeaveOneOut()(lengths, torch.arange(7), offsets_of(lengths))
    except ValueError as err:
        assert "min_user_events" in str(err)
    else:
        raise AssertionError("expected ValueError")


def test_global_time_split_never_trains_on_events_after_the_cutoff():
    lengths = torch.tensor([5, 5])
    timestamps = torch.tensor([0, 10, 20, 30, 40, 5, 15, 25, 35, 45])
    split = GlobalTimeSplit(val_fraction=0.2, test_fraction=0.2)(lengths, timestamps, offsets_of(lengths))
    offsets = offsets_of(lengths)
    t_val = torch.quantile(timestamps.double(), 0.6)
    for u in range(2):
        train_ts = timestamps[offsets[u]:offsets[u] + split.train_end[u]]
        assert bool((train_ts < t_val).all())
    for pairs in (split.val, split.test):
        ts = timestamps[offsets[pairs[:, 0]] + pairs[:, 1]]
        assert bool((ts >= t_val).all())
        assert bool((pairs[:, 1] >= 1).all())
    val_ts = timestamps[offsets[split.val[:, 0]] + split.val[:, 1]]
    test_ts = timestamps[offsets[split.test[:, 0]] + split.test[:, 1]]
    assert val_ts.max() < test_ts.min()


def test_user_holdout_never_trains_on_a_held_out_user_and_targets_their_whole_trajectory():
    lengths = torch.randint(3, 12, (50,))
    split = UserHoldout(val_fraction=0.2, test_fraction=0.1, seed=3)(lengths, torch.arange(int(lengths.sum())),
                                                                     offsets_of(lengths))
    val_users, test_users = set(split.val[:, 0].tolist()), set(split.test[:, 0].tolist())
    assert len(val_users) == 10 and len(test_users) == 5 and not val_users & test_users
    held_out = torch.tensor(sorted(val_users | test_users))
    assert bool((split.train_end[held_out] == 0).all())  # none of their events is a training event
    kept = torch.tensor([u for u in range(50) if u not in val_users | test_users])
    assert torch.equal(split.train_end[kept], lengths[kept])
    for pairs in (split.val, split.test):  # every position after the first, in order, per user
        for u in set(pairs[:, 0].tolist()):
            assert pairs[pairs[:, 0] == u, 1].tolist() == list(range(1, int(lengths[u])))
    again = UserHoldout(val_fraction=0.2, test_fraction=0.1, seed=3)(lengths, torch.arange(int(lengths.sum())),
                                                                     offsets_of(lengths))
    assert torch.equal(again.test, split.test)  # fixed by its own seed


def test_user_holdout_rejects_fractions_that_leave_no_user():
    lengths = torch.tensor([4, 5, 6])
    with pytest.raises(ValueError, match="3 users cannot give"):
        UserHoldout(val_fraction=0.1, test_fraction=0.1)(lengths, torch.arange(15), offsets_of(lengths))
