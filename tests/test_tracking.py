"""Real-time tracking: incremental updates (a recurrent state per user, or a bounded window)
give exactly the predictions of re-encoding each user's history, whatever the interleaving of
users in the stream; and a finished run is tracked from its checkpoint."""

import pytest
import torch

from research.models import Recurrent
from research.tracking import InterestTracker, UserSlots, occurrence
from research.train import build_datamodule, build_module, run
from tests.conftest import TINY_SYNTHETIC

MAX_LEN = 6


def left_pad(x: torch.Tensor, width: int) -> torch.Tensor:
    return torch.cat([x.new_zeros(width - x.numel()), x])[None]


def reencoded(module, items: torch.Tensor, behaviors: torch.Tensor, width: int) -> torch.Tensor:
    """P(next category) from encoding the last `width` events at once, as evaluation does."""
    batch = {"items": left_pad(items[-width:], width), "behaviors": left_pad(behaviors[-width:], width)}
    batch["categories"] = module.item_category[batch["items"]]
    h = module.model(batch)[:, -1]
    return module.next_category_log_probs(h).exp()[0]


@pytest.mark.parametrize(("model", "task"), [("gru", "next_item"), ("lstm", "next_category"),
                                              ("sasrec", "next_item"), ("caser", "multi_task")])
def test_incremental_tracking_equals_reencoding_the_history(model, task, make_cfg):
    cfg = make_cfg(f"model={model}", f"task={task}", f"datamodule.max_len={MAX_LEN}", *TINY_SYNTHETIC)
    datamodule = build_datamodule(cfg)
    torch.manual_seed(0)
    module = build_module(cfg, datamodule.meta).eval()
    tracker = InterestTracker(module, max_len=MAX_LEN)
    store = datamodule.store
    users = torch.tensor([3, 7, 11])
    # a stream that interleaves the users; batches of 5 hold two events of some users
    events = [(u, t) for t in range(14) for u in users.tolist() if t < int(store.lengths[u])]
    recurrent = isinstance(module.model, Recurrent)
    with torch.no_grad():
        for start in range(0, len(events), 5):
            chunk = events[start:start + 5]
            u = torch.tensor([e[0] for e in chunk])
            flat = store.offsets[u] + torch.tensor([e[1] for e in chunk])
            out = tracker.update(u * 1000 + 17, store.items[flat], store.behaviors[flat])  # any int64 user key
            for i, (user, t) in enumerate(chunk):
                first = int(store.offsets[user])
                history = slice(first, first + t + 1)
                width = t + 1 if recurrent else MAX_LEN  # recurrent: the whole history; else the window
                expected = reencoded(module, store.items[history], store.behaviors[history], width)
                torch.testing.assert_close(out.distribution[i], expected, rtol=1e-4, atol=1e-6)
    assert tracker.recurrent == (model in ("gru", "lstm"))


def test_user_slots_and_occurrences_are_vectorised_and_stable():
    slots = UserSlots()
    first = slots.lookup(torch.tensor([50, 7, 50]))
    assert first[0] == first[2] != first[1]
    second = slots.lookup(torch.tensor([7, 99, -3, 50]))
    assert second[0] == first[1] and second[3] == first[0]  # known users keep their slots
    assert sorted(second.tolist()) == [0, 1, 2, 3]
    assert occurrence(torch.tensor([4, 2, 4, 4, 2, 9])).tolist() == [0, 0, 1, 2, 1, 0]


def test_migration_flag_needs_a_new_leader_with_a_margin():
    class Heads(torch.nn.Module):
        def category_logits(self, h):
            return torch.log(0.1 + 0.6 * h)  # the present category leads with 0.7

    class LastCategory(torch.nn.Module):  # predicts the last event's category
        supported_tasks = frozenset({"next_category"})

        def __init__(self):
            super().__init__()
            self.heads = Heads()

        def forward(self, batch):
            return torch.nn.functional.one_hot(batch["categories"], 4).float()

    from research.module import SequenceRecModule
    from research.tasks import NextEvent

    task = NextEvent("next_category", "val/category_acc@1", item_weight=0.0, category_weight=1.0)
    module = SequenceRecModule(LastCategory(), task, None,
                               torch.nn.CrossEntropyLoss(), torch.optim.Adam, torch.tensor([0, 1, 2, 3, 1]))
    tracker = InterestTracker(module, max_len=3, min_margin=0.2)
    out = tracker.update(torch.tensor([1, 1, 1, 1]), torch.tensor([1, 4, 2, 2]))
    assert out.top.tolist() == [1, 1, 2, 2]
    assert out.migrated.tolist() == [False, False, True, False]
    cautious = InterestTracker(module, max_len=3, min_margin=0.65)  # the new leader leads by 0.6 only
    assert not cautious.update(torch.tensor([1, 1, 1, 1]), torch.tensor([1, 4, 2, 2])).migrated.any()


def test_a_finished_run_is_tracked_from_its_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("model=gru", "trainer.max_epochs=1", *TINY_SYNTHETIC)
    run(cfg)
    tracker, datamodule = InterestTracker.from_run(tmp_path / "run")
    store = datamodule.store
    out = tracker.update(torch.tensor([0, 1]), store.items[store.offsets[:2]])
    assert out.distribution.shape == (2, datamodule.meta.num_categories + 1)
    torch.testing.assert_close(out.distribution.sum(1), torch.ones(2))


def test_track_replays_an_events_file_counting_unknown_items(make_cfg, tmp_path):
    import json

    import polars as pl

    from research.track import main

    run(make_cfg("model=sasrec", "task=next_category", "trainer.max_epochs=1", *TINY_SYNTHETIC))
    items = pl.read_parquet(next((tmp_path / "cache").glob("*/items.parquet")))["raw"].to_list()
    events = pl.DataFrame({"user_id": ["ann", "bob", "ann", "ann"], "item_id": [items[0], items[1], 99_999, items[2]],
                           "timestamp": [3, 1, 2, 4]})
    events.write_csv(tmp_path / "events.csv")
    main([str(tmp_path / "run"), "--events", str(tmp_path / "events.csv"), "--out", str(tmp_path / "states.parquet")])
    states = pl.read_parquet(tmp_path / "states.parquet")
    assert states["user"].to_list() == ["bob", "ann", "ann"]  # time order; the unknown item dropped
    assert states["confidence"].to_list() == pytest.approx(
        states.select(pl.max_horizontal(pl.col("^p\\[.*\\]$"))).to_series().to_list())
    summary = json.loads((tmp_path / "states.json").read_text())
    assert summary["dropped_unknown_items"] == 1 and summary["events"] == 3 and summary["events_per_second"] > 0
    events.drop("timestamp").write_csv(tmp_path / "bad.csv")
    with pytest.raises(SystemExit, match="bad.csv: missing column\\(s\\) \\['timestamp'\\]"):
        main([str(tmp_path / "run"), "--events", str(tmp_path / "bad.csv")])


@pytest.mark.parametrize(("model", "task"), [("gru", "next_item"), ("lstm", "next_category"), ("sasrec", "next_item")])
def test_a_model_swapped_into_a_running_tracker_keeps_every_users_history(model, task, make_cfg):
    """After swap(new), every prediction is the new model's on the user's events: a recurrent
    state re-encoded from the last MAX_LEN events before the swap, then stepped on; a window
    model's window read with the new weights. Nothing is lost, and the swap flags nothing."""
    cfg = make_cfg(f"model={model}", f"task={task}", f"datamodule.max_len={MAX_LEN}", *TINY_SYNTHETIC)
    datamodule = build_datamodule(cfg)
    torch.manual_seed(0)
    old = build_module(cfg, datamodule.meta).eval()
    torch.manual_seed(1)
    new = build_module(cfg, datamodule.meta).eval()
    store, before, after = datamodule.store, 9, 3  # 9 > MAX_LEN: the windows are cut
    users = torch.nonzero(store.lengths >= before + after).squeeze(1)[:3]
    assert users.numel() == 3
    tracker = InterestTracker(old, max_len=MAX_LEN)

    def feed(t: int):
        flat = store.offsets[users] + t
        return tracker.update(users, store.items[flat], store.behaviors[flat])

    for t in range(before):
        feed(t)
    tracker.swap(new)
    recurrent = isinstance(new.model, Recurrent)
    with torch.no_grad():
        for user, slot in zip(users.tolist(), tracker.slots.lookup(users).tolist()):  # the swap flags nothing:
            seen = slice(int(store.offsets[user]), int(store.offsets[user]) + before)  # each top is the new model's
            assert tracker.top[slot] == reencoded(new, store.items[seen], store.behaviors[seen], MAX_LEN).argmax()
        for t in range(before, before + after):
            out = feed(t)
            for i, user in enumerate(users.tolist()):
                first = int(store.offsets[user])
                history = slice(first, first + t + 1)
                width = MAX_LEN + t - before + 1 if recurrent else MAX_LEN
                expected = reencoded(new, store.items[history], store.behaviors[history], width)
                torch.testing.assert_close(out.distribution[i], expected, rtol=1e-4, atol=1e-6)
