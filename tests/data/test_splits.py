import pytest
import torch

from research.data.splits import GlobalTimeSplit, LeaveOneOut, TimeWindows, UserHoldout, event_positions


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
    t_val = 30  # 60% of the events (6 of 10) lie before it
    assert int(split.train_end.sum()) == 6 and len(split.val) == len(split.test) == 2
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


def test_global_time_split_takes_a_log_above_torch_quantiles_limit_of_16m_events():
    lengths = torch.tensor([2**23, 2**23 + 2])  # torch.quantile refuses more than 2**24 values
    timestamps = torch.cat([torch.arange(2**23) * 2, torch.arange(2**23 + 2) * 2 + 1])
    split = GlobalTimeSplit(val_fraction=0.25, test_fraction=0.25)(lengths, timestamps, offsets_of(lengths))
    assert split.train_end.tolist() == [2**22 + 1, 2**22]  # the events before the median time, 2**23 + 1


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


def random_log(users: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(lengths, timestamps): users with 2 to 40 events at increasing distinct times."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 41, (users,), generator=g)
    clock = torch.randperm(int(lengths.sum()) * 3, generator=g)[: int(lengths.sum())]
    chunks = clock.split(lengths.tolist())
    return lengths, torch.cat([c.sort().values for c in chunks])


def time_of(pairs: torch.Tensor, timestamps: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    return timestamps[offsets[pairs[:, 0]] + pairs[:, 1]]


def test_time_windows_learn_only_from_the_past_and_test_every_event_of_their_window_once():
    lengths, timestamps = random_log()
    offsets = offsets_of(lengths)
    windows = TimeWindows(windows=5, start=0.4, val_fraction=0.2)
    cuts = windows.cuts(timestamps.sort().values)
    assert cuts.numel() == 6 and bool((cuts[1:] > cuts[:-1]).all()) and int(cuts[-1]) > int(timestamps.max())
    per_window = torch.bucketize(timestamps, cuts, right=True) - 1  # window of each event, -1 before t_0
    sizes = torch.bincount(per_window[per_window >= 0], minlength=5)
    assert int(sizes.max() - sizes.min()) <= 2  # equal event counts
    assert abs(int((per_window < 0).sum()) - 0.4 * timestamps.numel()) <= 1
    users, positions = event_positions(offsets)
    tested = []
    for i, split in enumerate(windows.splits(timestamps, offsets)):
        learned = positions < split.train_end[users]  # leading events: the training data
        val_times = time_of(split.val, timestamps, offsets)
        test_times = time_of(split.test, timestamps, offsets)
        assert bool((timestamps[learned] < val_times.min()).all())  # training precedes validation
        assert bool((val_times < cuts[i]).all())  # validation precedes the window
        assert bool(((test_times >= cuts[i]) & (test_times < cuts[i + 1])).all())
        assert split.counts == {"window": i, "window_start": int(cuts[i]), "window_end": int(cuts[i + 1])}
        tested.append(offsets[split.test[:, 0]] + split.test[:, 1])
    tested = torch.cat(tested)
    assert tested.unique().numel() == tested.numel()  # no event tested twice
    expected = (per_window >= 0) & (positions >= 1)  # every event of a window with an earlier event
    assert torch.equal(tested.sort().values, torch.nonzero(expected).squeeze(1))


def test_time_windows_take_cut_times_and_the_window_from_the_config():
    lengths, timestamps = random_log(seed=1)
    offsets = offsets_of(lengths)
    split = TimeWindows(cut_times=[30, 60, 90], window=1)(lengths, timestamps, offsets)
    times = time_of(split.test, timestamps, offsets)
    assert bool(((times >= 60) & (times < 90)).all()) and split.counts["window"] == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cut_times": [5, 5, 9]}, "split.cut_times=\\[5, 5, 9\\]: need at least two increasing timestamps"),
    ({"cut_times": [5]}, "need at least two increasing"),
    ({"windows": 3, "window": 3}, "split.window=3: the split has windows 0 .. 2"),
])
def test_time_windows_refuse_cuts_that_make_no_windows(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TimeWindows(**kwargs)


def test_time_windows_refuse_a_window_left_empty_by_tied_timestamps():
    lengths = torch.tensor([10, 10])
    timestamps = torch.tensor([0] * 5 + [7] * 5 + [1] * 5 + [7] * 5)
    with pytest.raises(ValueError, match="leave a window empty"):
        TimeWindows(windows=4, start=0.5)(lengths, timestamps, offsets_of(lengths))
