"""The build cache: built once per (fingerprint, preprocessing) key, atomic, and honest reports."""

import json
import logging
import os
import socket
import subprocess
import sys

import polars as pl
import pytest

from research.data import cache
from research.data.schema import RawLog

LOGGER = "research.data.cache"


def toy_events() -> pl.DataFrame:
    """3 users with 4, 3 and 2 events, one exact duplicate (user 1) and one null-item row."""
    rows = [
        (1, 10, 1, 0), (1, 11, 1, 1), (1, 12, 2, 2), (1, 13, 2, 3),
        (1, 12, 2, 2),  # exact duplicate of the third event
        (2, 10, 1, 0), (2, None, 1, 1), (2, 12, 2, 2), (2, 13, 2, 3),
        (3, 11, 1, 0), (3, 13, 2, 1),  # too short for min_user_events=3
    ]
    return pl.DataFrame(
        [(*r, i) for i, r in enumerate(rows)],
        schema={"user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64, "timestamp": pl.Int64,
                "order": pl.Int64},
        orient="row",
    )


class FakeBuilder:
    def __init__(self, events: pl.DataFrame | None = None, tag: str = "a", error: Exception | None = None):
        self.name = "fake"
        self.tag = tag
        self.events = toy_events() if events is None else events
        self.error = error
        self.loads = 0

    def fingerprint(self) -> dict:
        return {"builder": "fake", "tag": self.tag}

    def load(self) -> RawLog:
        self.loads += 1
        if self.error is not None:
            raise self.error
        return RawLog(events=self.events, info={"tag": self.tag})


def test_second_load_reuses_the_cache_without_calling_the_builder(tmp_path, caplog):
    builder = FakeBuilder()
    caplog.set_level(logging.INFO, logger=LOGGER)
    first = cache.load_or_build(builder, tmp_path)
    assert builder.loads == 1
    assert not any("reusing cached dataset" in r.getMessage() for r in caplog.records)

    caplog.clear()
    second = cache.load_or_build(builder, tmp_path)
    assert builder.loads == 1
    assert any(r.name == LOGGER and "reusing cached dataset" in r.getMessage() for r in caplog.records)
    assert second.directory == first.directory
    assert second.events.equals(first.events)
    assert second.items.equals(first.items)
    assert second.meta == first.meta


def test_a_new_builder_object_with_the_same_fingerprint_hits_the_cache(tmp_path):
    cache.load_or_build(FakeBuilder(), tmp_path)
    again = FakeBuilder()
    cache.load_or_build(again, tmp_path)
    assert again.loads == 0


def test_fingerprint_and_min_user_events_are_part_of_the_key(tmp_path):
    base = cache.ensure_built(FakeBuilder(tag="a"), tmp_path, min_user_events=3)
    other_fingerprint = cache.ensure_built(FakeBuilder(tag="b"), tmp_path, min_user_events=3)
    other_min = cache.ensure_built(FakeBuilder(tag="a"), tmp_path, min_user_events=2)
    assert len({base, other_fingerprint, other_min}) == 3
    assert all(d.parent == tmp_path.resolve() for d in (base, other_fingerprint, other_min))
    # and the entries hold what their key says
    assert json.loads((other_min / "meta.json").read_text())["num_users"] == 3
    assert json.loads((base / "meta.json").read_text())["num_users"] == 2
    assert json.loads((other_fingerprint / "meta.json").read_text())["info"] == {"tag": "b"}


@pytest.mark.parametrize("error", [RuntimeError("boom"), FileNotFoundError("gone"), KeyboardInterrupt()])
def test_a_failing_builder_leaves_nothing_in_the_cache(tmp_path, error):
    cache_dir = tmp_path / "cache"
    builder = FakeBuilder(error=error)
    with pytest.raises(type(error)):
        cache.ensure_built(builder, cache_dir)
    assert builder.loads == 1
    assert list(cache_dir.iterdir()) == []  # no entry and no hidden temporary directory
    # the next attempt builds again rather than trusting a half-written entry
    builder.error = None
    cache.ensure_built(builder, cache_dir)
    assert builder.loads == 2


def test_a_builder_returning_a_frame_without_required_columns_leaves_nothing(tmp_path):
    builder = FakeBuilder(events=toy_events().drop("order"))
    with pytest.raises(ValueError, match="order"):
        cache.ensure_built(builder, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_meta_report_counts_what_was_dropped(tmp_path):
    data = cache.load_or_build(FakeBuilder(), tmp_path, min_user_events=3)
    meta = json.loads((data.directory / "meta.json").read_text())
    report = meta["report"]
    assert report["raw_events"] == 11
    assert report["dropped_malformed"] == 1  # the null item
    assert report["dropped_duplicates"] == 1
    assert report["dropped_short_users"] == 1  # user 3 (2 events)
    assert report["dropped_short_user_events"] == 2
    assert report["events"] == data.events.height == 4 + 3
    assert report["events"] == report["raw_events"] - report["dropped_malformed"] - report[
        "dropped_duplicates"] - report["dropped_short_user_events"]
    assert meta["num_users"] == data.users.height == 2
    assert meta["num_items"] == data.items.height == data.events["item"].n_unique()
    assert meta["num_categories"] == data.categories.height
    assert meta["num_behaviors"] == 0 and data.behaviors is None
    assert meta["has_state"] is False
    assert data.meta == meta


def test_no_user_long_enough_raises_and_names_the_setting(tmp_path):
    builder = FakeBuilder()
    with pytest.raises(ValueError, match=r"datamodule\.min_user_events"):
        cache.load_or_build(builder, tmp_path / "cache", min_user_events=50)
    assert list((tmp_path / "cache").iterdir()) == []


def test_every_event_removed_by_the_build_is_reported(tmp_path):
    events = pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2], "item_id": [10, 11, 12, 10, 11, 12], "category_id": [5, 5, 6, 5, 5, 6],
        "timestamp": [0, 1, 2, 0, 1, 2], "order": list(range(6)),
        "behavior": ["pv", None, "buy", "pv", "pv", "pv"],  # behaviour is optional: one row lacks it
    })
    data = cache.load_or_build(FakeBuilder(events=events), tmp_path, min_user_events=3)
    report = data.meta["report"]
    dropped = sum(v for k, v in report.items() if k.startswith("dropped_") and k != "dropped_short_users")
    assert data.events.height == report["events"] == report["raw_events"] - dropped
    assert data.events.group_by("user").len()["len"].min() >= 3  # min_user_events still holds


def test_a_truncated_meta_json_is_detected_and_the_entry_rebuilt(tmp_path):
    builder = FakeBuilder()
    directory = cache.ensure_built(builder, tmp_path)
    meta = directory / "meta.json"
    meta.write_text(meta.read_text()[: len(meta.read_text()) // 2])
    assert "meta.json is unreadable" in cache.damage(directory)
    cache.ensure_built(builder, tmp_path)
    assert builder.loads == 2
    assert json.loads(meta.read_text())["num_users"] == 2


def test_a_build_killed_outright_leaves_a_directory_the_next_build_removes(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    dead = tmp_path / f".fake-0123+{host}+{int(finished.stdout)}+x1y2"  # as mkdtemp names it
    running = tmp_path / f".fake-0123+{host}+{os.getpid()}+z3w4"  # a build in progress elsewhere
    for path in (dead, running):
        (path / ".staging").mkdir(parents=True)
    cache.ensure_built(FakeBuilder(), tmp_path)
    assert not dead.exists()
    assert running.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == [running]
