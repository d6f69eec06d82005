import torch

from research.data.splits import GlobalTimeSplit, LeaveOneOut


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
