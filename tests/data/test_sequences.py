"""Protocol properties of the batches: what a prediction may see, and that nothing is lost."""

import polars as pl
import pytest
import torch

from research.data.sequences import EvalTargets, EventStore, TrainBatches, TrainPrefixes, TrainWindows, trim_padding
from research.data.splits import LeaveOneOut


def make_store(lengths: list[int]) -> EventStore:
    """Every event gets a unique item id (1..E), so ids identify positions exactly."""
    users = [u for u, n in enumerate(lengths) for _ in range(n)]
    total = len(users)
    events = pl.DataFrame({
        "user": users,
        "item": list(range(1, total + 1)),
        "category": [1 + (i % 3) for i in range(total)],
        "timestamp": list(range(total)),
    })
    return EventStore.from_events(events, len(lengths))


def test_train_windows_use_every_training_target_exactly_once_and_only_from_the_past():
    lengths = [3, 5, 12, 30]
    store = make_store(lengths)
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    windows = TrainWindows(store, split.train_end, max_len=4)
    batch = windows.__getitems__(list(range(len(windows))))
    targets = batch["target_items"][batch["target_items"] > 0]
    expected = torch.cat([store.items[store.offsets[u] + 1: store.offsets[u] + split.train_end[u]]
                          for u in range(len(lengths))])
    assert sorted(targets.tolist()) == sorted(expected.tolist())  # each once, none missing
    # inputs at and before a target's position are strictly earlier events of the same user
    items, target_items = batch["items"], batch["target_items"]
    valid = target_items > 0
    assert bool((items[valid] == target_items[valid] - 1).all())  # unique ids: the previous event
    # no validation or test event is ever a training input or target
    held_out = {int(store.items[store.offsets[u] + p]) for u, p in torch.cat([split.val, split.test]).tolist()}
    assert not held_out & set(batch["items"].flatten().tolist())
    assert not held_out & set(targets.tolist())


def test_eval_targets_see_only_events_before_the_target():
    lengths = [3, 6, 9]
    store = make_store(lengths)
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    data = EvalTargets(store, split.test, max_len=5, slice_window=2)
    batch = data.__getitems__([0, 1, 2])
    assert sorted(batch["user"].tolist()) == [0, 1, 2]
    for row in range(3):
        n = lengths[int(batch["user"][row])]
        target = int(batch["target_item"][row])
        seen = batch["items"][row][batch["items"][row] > 0].tolist()
        assert seen == list(range(max(target - 5, target - n + 1), target))  # the last 5 before it
        history = batch["history"][1][batch["history"][0] == row].tolist()
        assert history == list(range(target - n + 1, target))  # full history, not the window
        assert target not in seen and target not in history


def test_stay_shift_label_uses_the_last_m_events():
    events = pl.DataFrame({"user": [0] * 6, "item": [1, 2, 3, 4, 5, 6], "category": [1, 1, 2, 3, 3, 1],
                           "timestamp": list(range(6))})
    store = EventStore.from_events(events, 1)
    targets = torch.tensor([[0, 4], [0, 5]])  # category 3 after (.., 2, 3); category 1 after (.., 2, 3, 3)
    batch = EvalTargets(store, targets, max_len=10, slice_window=3).__getitems__([0, 1])
    assert batch["target_category"].tolist() == [3, 1]
    assert batch["is_shift"].tolist() == [False, True]
    wide = EvalTargets(store, targets, max_len=10, slice_window=5).__getitems__([0, 1])
    assert wide["is_shift"].tolist() == [False, False]


def test_trim_padding_drops_only_all_padding_columns():
    history = torch.arange(10).view(2, 5)  # (2, H) with H equal to the window width by chance
    batch = {"items": torch.tensor([[0, 0, 0, 1, 2], [0, 0, 3, 4, 5]]), "user": torch.tensor([0, 1]),
             "history": history}
    out = trim_padding(dict(batch), width=5)
    assert out["items"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out["user"].tolist() == [0, 1]
    assert torch.equal(out["history"], history)


@pytest.mark.parametrize("bucket_batches", [4, 0])
def test_train_batches_cover_every_row_once_and_depend_on_the_epoch(bucket_batches):
    lengths = torch.randint(1, 50, (1000,))
    sampler = TrainBatches(lengths, batch_size=32, seed=3, bucket_batches=bucket_batches)

    def epoch() -> list[list[int]]:
        return [b.tolist() for b in sampler]

    first = epoch()
    assert sorted(i for b in first for i in b) == list(range(1000))
    assert len(first) == len(sampler)
    assert first == epoch()  # deterministic for an epoch
    sampler.set_epoch(1)
    assert first != epoch()


@pytest.mark.parametrize("train_from", [None, 4])
def test_train_prefixes_give_each_training_target_one_row_with_the_events_before_it(train_from):
    """The rows of RecBole's prefix training: the targets of the windows, each once, as the last
    column of its own row, whose inputs are the max_len events just before it (ids identify
    positions: make_store numbers the events 1..E in order)."""
    store = make_store([3, 5, 12, 30])
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    start = None if train_from is None else torch.full_like(split.train_end, train_from)
    prefixes = TrainPrefixes(store, split.train_end, max_len=4, train_from=start)
    windows = TrainWindows(store, split.train_end, max_len=4, train_from=start)
    rows = prefixes[list(range(len(prefixes)))]
    assert len(prefixes) == windows.num_targets() == prefixes.num_targets()
    assert bool((rows["target_items"][:, :-1] == 0).all()) and bool((rows["target_items"][:, -1] > 0).all())
    every = windows[list(range(len(windows)))]["target_items"]
    assert sorted(rows["target_items"][:, -1].tolist()) == sorted(every[every > 0].tolist())
    target = rows["target_items"][:, -1]
    for history, t, user in zip(rows["items"].tolist(), target.tolist(), prefixes.users.tolist()):
        real = [i for i in history if i > 0]
        expected = list(range(max(int(store.offsets[user]) + 1, t - 4), t))
        assert real == expected and history[-1] == t - 1  # the events just before, left-padded
    assert prefixes.lengths().tolist() == [len([i for i in h if i > 0]) for h in rows["items"].tolist()]


def test_length_buckets_hold_windows_of_similar_length():
    lengths = torch.randint(1, 50, (2000,))
    spread = [float(lengths[b].float().std()) for b in TrainBatches(lengths, 32, seed=0, bucket_batches=10)]
    plain = [float(lengths[b].float().std()) for b in TrainBatches(lengths, 32, seed=0, bucket_batches=0)]
    assert sum(spread) < 0.5 * sum(plain)


def test_ranks_split_one_schedule_into_equal_disjoint_shares():
    lengths = torch.randint(1, 50, (1000,))  # 32 batches of 32 over 3 ranks: 11 each, 1 padded copy
    shares = [list(TrainBatches(lengths, 32, seed=1, world=3, rank=r)) for r in range(3)]
    assert {len(s) for s in shares} == {11}
    rows = sorted(i for s in shares for b in s for i in b.tolist())
    assert set(rows) == set(range(1000))


@pytest.mark.parametrize("bucket_batches", [4, 0])
@pytest.mark.parametrize("rows, batch_size", [(1000, 256), (1000, 100), (37, 5000), (3, 100)])
def test_batches_counted_in_targets_hold_nearly_equal_targets(rows, batch_size, bucket_batches):
    """ceil(T / batch_size) batches every epoch, each within one window of T / n targets, every
    row once; the same schedule for the same epoch, another for the next."""
    targets = torch.randint(1, 51, (rows,))
    sampler = TrainBatches(targets, batch_size, seed=2, bucket_batches=bucket_batches, targets=targets)
    total = int(targets.sum())
    n, schedules = -(-total // batch_size), []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == n
        assert sorted(i for b in batches for i in b.tolist()) == list(range(rows))
        sums = torch.stack([targets[b].sum() for b in batches])
        assert int(sums.sum()) == total and float((sums - total / n).abs().max()) <= 50
        schedules.append([b.tolist() for b in batches])
    assert schedules[0] == schedules[2]
    assert rows < 10 or schedules[0] != schedules[1]


def test_rows_without_targets_give_no_batches():
    none = torch.zeros(3, dtype=torch.long)
    assert list(TrainBatches(none, 100, seed=0, targets=none)) == []


def test_a_target_batch_smaller_than_the_longest_window_is_refused():
    targets = torch.tensor([50, 3, 4, 60, 2])
    with pytest.raises(ValueError, match=r"datamodule.batch_size=64 targets.*longest training window \(60 targets\)"):
        TrainBatches(targets, 64, seed=0, targets=targets)


def meta_batches(dataset, rows: list[int]) -> tuple[dict, dict]:
    """A batch cut from the host store and the same batch cut from a store on the `meta`
    device: torch refuses to mix a meta tensor with a host one (beyond scalars) and to read a
    meta tensor's value, so the second batch exists only if every step of cutting it runs where
    the events live and no value is read back from there (on a GPU: no sync per batch)."""
    meta = dataset.store.to(torch.device("meta"))
    return dataset[rows], dataset.reading(meta)[rows]


@pytest.mark.parametrize("states", [False, True])
def test_batches_are_cut_on_the_device_that_holds_the_events(states):
    store = make_store([3, 5, 12, 30, 4, 61])
    if states:  # the simulator's hidden states travel too
        store.states = store.categories.clone()
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    for dataset in (TrainWindows(store, split.train_end, max_len=8),
                    EvalTargets(store, split.val, max_len=8, slice_window=3)):
        rows = list(range(len(dataset)))
        host, meta = meta_batches(dataset, rows)
        assert host.keys() == meta.keys()
        for key, value in host.items():
            assert meta[key].device.type == "meta", key
            assert (meta[key].shape, meta[key].dtype) == (value.shape, value.dtype), key
        # the width is trim_padding's: no input column is padding in every row
        assert bool((host["items"] > 0).any(0).all())
        assert trim_padding(dict(host), host["items"].size(1))["items"].shape == host["items"].shape
        # the same events held by another store object give the same batch (reading copies nothing)
        again = dataset.reading(store.to(torch.device("cpu")))[rows]
        assert all(torch.equal(again[k], host[k]) for k in host)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_cut_on_a_gpu_equal_the_host_batches_and_need_no_sync():
    store = make_store([3, 5, 12, 30, 4, 61])
    split = LeaveOneOut()(store.lengths, store.timestamps, store.offsets)
    gpu = store.to(torch.device("cuda"))
    for dataset in (TrainWindows(store, split.train_end, max_len=8), EvalTargets(store, split.val, max_len=8)):
        rows = list(range(len(dataset)))
        torch.cuda.set_sync_debug_mode("error")  # any implicit device sync while cutting raises
        try:
            device = dataset.reading(gpu)[rows]
        finally:
            torch.cuda.set_sync_debug_mode(0)
        host = dataset[rows]
        assert all(device[k].is_cuda and torch.equal(device[k].cpu(), host[k]) for k in host)


@pytest.mark.parametrize("rows, batch_size, bucket_batches", [(1000, 32, 4), (777, 7, 1), (5, 2, 3), (0, 4, 2)])
def test_length_buckets_are_each_chunk_of_batches_sorted_by_length(rows, batch_size, bucket_batches):
    """The definition, one chunk of `bucket_batches` batches at a time, against the sampler's
    single sort over all chunks."""
    lengths = torch.randint(1, 50, (rows,))
    sampler = TrainBatches(lengths, batch_size, seed=5, bucket_batches=bucket_batches)
    sampler.set_epoch(2)
    g = torch.Generator().manual_seed(5 * 1_000_003 + 2)
    order, chunk, expected = torch.randperm(rows, generator=g), batch_size * bucket_batches, []
    for start in range(0, rows, chunk):
        part = order[start:start + chunk]
        expected.extend(part[torch.argsort(lengths[part], stable=True)].split(batch_size))
    expected = [expected[i].tolist() for i in torch.randperm(len(expected), generator=g).tolist()]
    assert [b.tolist() for b in sampler.batches()] == expected
